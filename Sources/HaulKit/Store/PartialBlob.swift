internal import CShims
#if canImport(Glibc)
import Glibc
#endif

/// A blob being downloaded: a preallocated data file in the partials
/// directory, locked against a second Haul process, that becomes
/// `blobs/sha256-<hex>` only through `commit` after its digest matched.
///
/// The partials live outside `blobs/` because `ollama serve` deletes every
/// unknown file in `blobs/` at start-up (reference §6.4).
final class PartialBlob: Sendable {
    let path: String
    let fd: Int32
    let size: Int64

    /// Opens (creating if needed) and locks the data file, and reserves its
    /// size on disk so a full disk is reported now rather than mid-download.
    init(path: String, size: Int64) throws(HaulError) {
        let fd = FileSystem.retrying { open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644) }
        try FileSystem.check(fd, "open", path)
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let code = errno
            close(fd)
            if code == EWOULDBLOCK {
                throw .io(operation: "lock (another haul process is downloading this blob)", path: path, errno: code)
            }
            throw .io(operation: "lock", path: path, errno: code)
        }
        self.path = path
        self.fd = fd
        self.size = size
        do {
            try FileSystem.check(ftruncate(fd, 0), "truncate", path)
            try Self.preallocate(fd: fd, size: size, path: path)
        } catch {
            close(fd)
            throw error
        }
    }

    /// fallocate reserves the blocks (no fragmentation, ENOSPC up front).
    /// Filesystems without it get a sparse file of the right size instead.
    private static func preallocate(fd: Int32, size: Int64, path: String) throws(HaulError) {
        guard size > 0 else { return }
        if hl_fallocate(fd, 0, size) == 0 { return }
        let code = errno
        if code == EOPNOTSUPP || code == ENOSYS || code == EINVAL {
            try FileSystem.check(ftruncate(fd, off_t(size)), "truncate", path)
            return
        }
        throw .io(operation: "write", path: path, errno: code)
    }

    /// Makes the verified data durable and gives it its final name.
    func commit(to finalPath: String) throws(HaulError) {
        try FileSystem.check(FileSystem.retrying { fdatasync(fd) }, "fsync", path)
        try FileSystem.check(rename(path, finalPath), "rename", finalPath)
        try FileSystem.syncDirectory(FileSystem.parent(of: finalPath))
    }

    /// Removes the data file (after a digest mismatch).
    func discard() { unlink(path) }

    deinit { close(fd) }
}
