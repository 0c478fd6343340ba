import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// An interrupted (or running) blob download in the partials directory.
public struct PartialDownload: Sendable, Equatable {
    public let digest: Digest
    /// The blob's size; 0 when no valid journal says.
    public let size: Int64
    /// Bytes a resume would keep (0 without a valid journal: the data would
    /// be fetched again).
    public let completed: Int64
    /// The model whose pull started it, as recorded in the journal.
    public let model: String?
    public let modified: Date
    /// Space the data file occupies on disk.
    public let allocated: Int64
    /// A Haul process holds its lock right now.
    public let inUse: Bool
}

extension ModelStore {
    /// Every partial blob, newest first.
    public func partials() -> [PartialDownload] {
        var out: [PartialDownload] = []
        for name in FileSystem.listDirectory(partialsDirectory) where name.hasSuffix("-partial") {
            guard name.hasPrefix("sha256-"),
                  let digest = try? Digest(parsing: "sha256:" + name.dropFirst(7).dropLast(8)) else { continue }
            let path = partialsDirectory + "/" + name
            var st = stat()
            guard stat(path, &st) == 0 else { continue }
            // The journal a resume would use, judged by the same rules.
            let journal = PartialBlob.recover(journalPath: path + ".journal", digest: digest,
                                              size: Int64(st.st_size), onDisk: Int64(st.st_size)).journal
            let mtime = FileSystem.modificationTime(path + ".journal") ?? FileSystem.modificationTime(path) ?? 0
            out.append(PartialDownload(digest: digest, size: journal?.size ?? Int64(st.st_size),
                                       completed: journal?.point.ranges.count ?? 0, model: journal?.model,
                                       modified: Date(timeIntervalSince1970: mtime),
                                       allocated: Int64(st.st_blocks) * 512, inUse: isLocked(path)))
        }
        return out.sorted { $0.modified > $1.modified }
    }

    /// Deletes a partial blob and its journal; refuses one a running pull
    /// holds.
    public func removePartial(_ digest: Digest) throws(HaulError) {
        let path = partialPath(digest)
        guard [path, path + ".journal", path + ".journal.live"].contains(where: FileSystem.exists) else {
            throw .io(operation: "remove partial", path: path, errno: ENOENT)
        }
        if isLocked(path) {
            throw .io(operation: "remove partial (a pull is downloading it)", path: path, errno: EBUSY)
        }
        for p in [path + ".journal.live", path + ".journal", path] where unlink(p) != 0 && errno != ENOENT {
            throw .io(operation: "remove", path: p, errno: errno)
        }
    }

    /// Bytes already reserved on disk for this blob by an earlier attempt.
    func partialAllocation(_ layer: Layer) -> Int64 {
        var st = stat()
        guard stat(partialPath(layer.digest), &st) == 0 else { return 0 }
        return min(layer.size, Int64(st.st_blocks) * 512)
    }

    /// Leftovers of a blob that is stored now (a crash between its commit
    /// and the journal's removal, or another tool finished it).
    func removeStalePartial(_ digest: Digest) {
        let path = partialPath(digest)
        guard [path, path + ".journal", path + ".journal.live"].contains(where: FileSystem.exists) else { return }
        // Under the partial's own lock, on the file the path names: a
        // process that starts on it meanwhile waits, then finds it gone.
        let fd = FileSystem.retrying { open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644) }
        guard fd >= 0 else { return }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0, PartialBlob.isFile(fd, at: path) else {
            close(fd)
            return
        }
        PartialBlob.removeLocked(fd: fd, path: path)
    }

    /// Whether another open file description holds the partial's lock.
    private func isLocked(_ path: String) -> Bool {
        let fd = FileSystem.retrying { open(path, O_RDONLY | O_CLOEXEC) }
        guard fd >= 0 else { return false }
        defer { close(fd) }
        if flock(fd, LOCK_SH | LOCK_NB) != 0 { return errno == EWOULDBLOCK }
        flock(fd, LOCK_UN)
        return false
    }
}
