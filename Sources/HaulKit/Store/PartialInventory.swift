import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// An interrupted (or running) blob download in the partials directory.
public struct PartialDownload: Sendable, Equatable {
    /// The blob.
    public let digest: Digest
    /// The blob's size; 0 when no valid journal says.
    public let size: Int64
    /// Bytes a resume would keep (0 without a valid journal: the data would
    /// be fetched again).
    public let completed: Int64
    /// Bytes from the start whose SHA-256 state the journal keeps: a resume
    /// hashes only what follows.
    public let hashed: Int64
    /// The model whose pull started it, as recorded in the journal.
    public let model: String?
    /// When its journal (or data) last changed.
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
                let digest = try? Digest(parsing: "sha256:" + name.dropFirst(7).dropLast(8))
            else { continue }
            let path = partialsDirectory + "/" + name
            var st = stat()
            guard stat(path, &st) == 0 else { continue }
            // The journal a resume would use, judged by the same rules.
            let files = PartialFiles(data: path)
            let journal = PartialBlob.recover(
                files, digest: digest,
                size: Int64(st.st_size), onDisk: Int64(st.st_size)
            ).journal
            let mtime = FileSystem.modificationTime(files.journal) ?? FileSystem.modificationTime(path) ?? 0
            out.append(
                PartialDownload(
                    digest: digest, size: journal?.size ?? Int64(st.st_size),
                    completed: journal?.point.ranges.count ?? 0, hashed: journal?.point.hashed ?? 0,
                    model: journal?.model,
                    modified: Date(timeIntervalSince1970: mtime),
                    allocated: Int64(st.st_blocks) * 512, inUse: isLocked(path)))
        }
        return out.sorted { $0.modified > $1.modified }
    }

    /// Deletes a partial blob and its journal; refuses one a running pull
    /// holds.
    public func removePartial(_ digest: Digest) throws(HaulError) {
        let files = partialFiles(digest)
        guard files.exist else { throw .io(operation: "remove partial", path: files.data, errno: ENOENT) }
        guard let fd = lockedForRemoval(files) else {
            throw .io(operation: "remove partial (a pull is downloading it)", path: files.data, errno: EBUSY)
        }
        PartialBlob.removeLocked(fd, files: files)
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
        let files = partialFiles(digest)
        guard files.exist, let fd = lockedForRemoval(files) else { return }
        PartialBlob.removeLocked(fd, files: files)
    }

    /// The partial's lock, taken without waiting, on the file its path
    /// names: whoever starts on it meanwhile waits, then finds it gone. Nil
    /// while a pull holds it.
    private func lockedForRemoval(_ files: PartialFiles) -> FileDescriptor? {
        guard let fd = try? FileDescriptor.open(files.data, O_RDWR | O_CREAT | O_NOFOLLOW),
            (try? fd.tryLock(.exclusive)) == true, fd.isStillAtPath
        else { return nil }
        return fd
    }

    /// Whether another open file description holds the partial's lock.
    private func isLocked(_ path: String) -> Bool {
        guard let fd = try? FileDescriptor.open(path, O_RDONLY), let free = try? fd.tryLock(.shared) else {
            return false
        }
        if free { fd.unlock() }
        return !free
    }
}
