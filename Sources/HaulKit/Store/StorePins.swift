import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Blobs that pulls in flight are about to reference, visible to every
/// process on the store. A pull may find a blob cached, or finish one,
/// long before its manifest names it; `haul rm`, `DELETE /api/delete` or
/// another pull's pruning must not delete it in between, in this process
/// or any other.
///
/// Each pin is a file in `.haul/pins/` listing digests, held under an
/// exclusive `flock` for as long as the pull runs. Deleting blobs happens
/// under `.haul/gc.lock` (exclusive) and skips every digest of a pin whose
/// lock is held; a pin whose lock is free belonged to a process that died
/// and is removed. Pins are written under the same lock (shared), so a
/// deleter sees either the whole pin or none, and a pull that pins first
/// and checks which blobs are cached second can never lose one.
struct StorePins: Sendable {
    let directory: String
    let gcLockPath: String

    init(store: ModelStore) {
        directory = store.root + "/.haul/pins"
        gcLockPath = store.root + "/.haul/gc.lock"
    }

    /// Pins `digests` until the returned pin is released (or the process
    /// ends).
    func pin(_ digests: [Digest]) throws(HaulError) -> Pin {
        try FileSystem.makeDirectories(directory)
        let gc = try lockGC(.shared)
        // A new file under a name nobody can predict (O_EXCL|O_NOFOLLOW).
        let directory = directory
        let file = try FileSystem.createUnique(O_RDWR) { directory + "/pin-" + FileSystem.randomHex(16) }
        let path = file.path
        let fd = file.descriptor
        do throws(HaulError) {
            guard try fd.tryLock(.exclusive) else { throw .io(operation: "lock", path: path, errno: EWOULDBLOCK) }
            try fd.writeAll(Array(digests.map { $0.description + "\n" }.joined().utf8))
        } catch {
            unlink(path)
            throw error
        }
        gc.close()
        return Pin(fd, path: path)
    }

    /// Runs `body` (which deletes blobs) with every digest some live pull
    /// has pinned, holding the store's deletion lock throughout.
    func withPinned<T>(_ body: (Set<Digest>) throws(HaulError) -> T) throws(HaulError) -> T {
        try FileSystem.makeDirectories(directory)
        let gc = try lockGC(.exclusive)
        var pinned = Set<Digest>()
        for name in FileSystem.listDirectory(directory) where name.hasPrefix("pin-") {
            let path = directory + "/" + name
            guard let fd = try? FileDescriptor.open(path, O_RDONLY | O_NOFOLLOW) else { continue }
            if (try? fd.tryLock(.shared)) == true {
                // Nobody holds it: its pull is gone.
                unlink(path)
                continue
            }
            guard let bytes = try? fd.readAll(limit: 16 << 20) else { continue }
            for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") {
                if let digest = try? Digest(parsing: String(line)) { pinned.insert(digest) }
            }
        }
        let result = try body(pinned)
        gc.close()
        return result
    }

    /// The store's deletion lock. Held only for a directory scan and a few
    /// unlinks: waiting for it blocks nothing that matters.
    private func lockGC(_ kind: FileDescriptor.Lock) throws(HaulError) -> FileDescriptor {
        let fd = try FileDescriptor.open(gcLockPath, O_RDWR | O_CREAT | O_NOFOLLOW)
        try fd.lock(kind)
        return fd
    }

    /// One pull's pin: released explicitly, or when the process ends.
    final class Pin: Sendable {
        private let state: Mutex<FileDescriptor?>
        private let path: String

        fileprivate init(_ fd: consuming FileDescriptor, path: String) {
            self.state = Mutex(Optional(fd))
            self.path = path
        }

        func release() {
            state.withLock { held in
                guard let fd = held.take() else { return }
                unlink(path)
                fd.close()
            }
        }

        deinit { release() }
    }
}
