#if canImport(Glibc)
import Glibc
#endif
import Synchronization

private let pinSerial = Atomic<UInt64>(0)

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
        let gc = try lockGC(LOCK_SH)
        defer { close(gc) }
        let serial = pinSerial.add(1, ordering: .relaxed).newValue
        let path = directory + "/pin-\(getpid())-\(serial)"
        let fd = FileSystem.retrying { open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644) }
        try FileSystem.check(fd, "open", path)
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let code = errno
            close(fd)
            unlink(path)
            throw .io(operation: "lock", path: path, errno: code)
        }
        do {
            try FileSystem.writeAll(fd, Array(digests.map { $0.description + "\n" }.joined().utf8), path: path)
        } catch {
            unlink(path)
            close(fd)
            throw error
        }
        return Pin(fd: fd, path: path)
    }

    /// Runs `body` (which deletes blobs) with every digest some live pull
    /// has pinned, holding the store's deletion lock throughout.
    func withPinned<T>(_ body: (Set<Digest>) throws(HaulError) -> T) throws(HaulError) -> T {
        try FileSystem.makeDirectories(directory)
        let gc = try lockGC(LOCK_EX)
        defer { close(gc) }
        var pinned = Set<Digest>()
        for name in FileSystem.listDirectory(directory) where name.hasPrefix("pin-") {
            let path = directory + "/" + name
            let fd = FileSystem.retrying { open(path, O_RDONLY | O_CLOEXEC) }
            guard fd >= 0 else { continue }
            defer { close(fd) }
            if flock(fd, LOCK_SH | LOCK_NB) == 0 {
                // Nobody holds it: its pull is gone.
                unlink(path)
                continue
            }
            guard let bytes = try? FileSystem.readFile(path, limit: 16 << 20) else { continue }
            for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") {
                if let digest = try? Digest(parsing: String(line)) { pinned.insert(digest) }
            }
        }
        return try body(pinned)
    }

    private func lockGC(_ mode: Int32) throws(HaulError) -> Int32 {
        let fd = FileSystem.retrying { open(gcLockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644) }
        try FileSystem.check(fd, "open", gcLockPath)
        // Held only for a directory scan and a few unlinks: waiting briefly
        // blocks nothing that matters.
        if FileSystem.retrying({ flock(fd, mode) }) != 0 {
            let code = errno
            close(fd)
            throw .io(operation: "lock", path: gcLockPath, errno: code)
        }
        return fd
    }

    /// One pull's pin: released explicitly, or when the process ends.
    final class Pin: Sendable {
        private let fd: Int32
        private let path: String
        private let released = Atomic<Bool>(false)

        fileprivate init(fd: Int32, path: String) {
            self.fd = fd
            self.path = path
        }

        func release() {
            guard !released.exchange(true, ordering: .relaxed) else { return }
            unlink(path)
            close(fd)
        }

        deinit { release() }
    }
}
