internal import CShims

#if canImport(Glibc)
import Glibc
#endif

/// An open file with exactly one owner, in the style of swift-system's
/// `FileDescriptor` but noncopyable: it is closed exactly once, when its
/// owner ends or calls `close()`, and cannot be copied into a second owner
/// that would close it again. Errors are `HaulError.io` naming the
/// operation and the path the descriptor was opened with. EINTR is retried.
///
/// Others may borrow `rawValue` (the engine's sinks and hasher, the
/// checkpoint writer) for as long as the owner is known to live.
struct FileDescriptor: ~Copyable, Sendable {
    let rawValue: Int32
    /// For error messages.
    let path: String

    enum Lock {
        case shared, exclusive
        var operation: Int32 { self == .shared ? LOCK_SH : LOCK_EX }
    }

    private init(rawValue: Int32, path: String) {
        self.rawValue = rawValue
        self.path = path
    }

    static func open(_ path: String, _ flags: Int32, permissions: mode_t = 0o644) throws(HaulError) -> FileDescriptor {
        let fd = FileSystem.retrying { Glibc.open(path, flags | O_CLOEXEC, permissions) }
        guard fd >= 0 else { throw .io(operation: "open", path: path, errno: errno) }
        return FileDescriptor(rawValue: fd, path: path)
    }

    /// Nil (instead of an error) when the file does not exist.
    static func openExisting(_ path: String, _ flags: Int32) throws(HaulError) -> FileDescriptor? {
        do {
            return try open(path, flags)
        } catch .io(_, _, ENOENT) {
            return nil
        }
    }

    /// Takes the `flock` lock, waiting for it.
    func lock(_ kind: Lock) throws(HaulError) {
        try check(FileSystem.retrying { flock(rawValue, kind.operation) }, "lock")
    }

    /// Takes the lock if no other open file description holds it; false if
    /// one does.
    func tryLock(_ kind: Lock) throws(HaulError) -> Bool {
        if FileSystem.retrying({ flock(rawValue, kind.operation | LOCK_NB) }) == 0 { return true }
        if errno == EWOULDBLOCK { return false }
        throw .io(operation: "lock", path: path, errno: errno)
    }

    func unlock() { _ = flock(rawValue, LOCK_UN) }

    func status() throws(HaulError) -> stat {
        var st = stat()
        try check(fstat(rawValue, &st), "stat")
        return st
    }

    /// Whether this is the file `path` names now (and it still has a name):
    /// a lock won on a file renamed or removed meanwhile protects nothing.
    var isStillAtPath: Bool {
        var held = stat()
        var named = stat()
        guard fstat(rawValue, &held) == 0, stat(path, &named) == 0 else { return false }
        return held.st_dev == named.st_dev && held.st_ino == named.st_ino && held.st_nlink > 0
    }

    func truncate(to size: Int64) throws(HaulError) { try check(ftruncate(rawValue, off_t(size)), "truncate") }

    /// Reserves `size` bytes: no fragmentation, ENOSPC now instead of
    /// mid-download; on a resumed file only the holes are filled.
    /// Filesystems without fallocate get a sparse file of the size instead.
    func allocate(_ size: Int64) throws(HaulError) {
        guard size > 0 else { return }
        if hl_fallocate(rawValue, 0, size) == 0 { return }
        let code = errno
        guard code == EOPNOTSUPP || code == ENOSYS || code == EINVAL else {
            throw .io(operation: "write", path: path, errno: code)
        }
        try truncate(to: size)
    }

    func sync() throws(HaulError) { try check(FileSystem.retrying { fsync(rawValue) }, "fsync") }
    func dataSync() throws(HaulError) { try check(FileSystem.retrying { fdatasync(rawValue) }, "fsync") }

    func writeAll(_ bytes: [UInt8]) throws(HaulError) {
        let code = bytes.withUnsafeBytes { write(all: $0) }
        if code != 0 { throw .io(operation: "write", path: path, errno: code) }
    }

    func writeAll(_ bytes: UnsafeRawBufferPointer) throws(HaulError) {
        let code = write(all: bytes)
        if code != 0 { throw .io(operation: "write", path: path, errno: code) }
    }

    /// 0, or the errno of the write that failed.
    private func write(all bytes: UnsafeRawBufferPointer) -> Int32 {
        var done = 0
        while done < bytes.count {
            let n = FileSystem.retrying { Glibc.write(rawValue, bytes.baseAddress! + done, bytes.count - done) }
            if n < 0 { return errno }
            done += n
        }
        return 0
    }

    /// The rest of the file, refusing more than `limit` bytes.
    func readAll(limit: Int) throws(HaulError) -> [UInt8] {
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let n = FileSystem.retrying { chunk.withUnsafeMutableBytes { read(rawValue, $0.baseAddress, $0.count) } }
            if n < 0 { throw .io(operation: "read", path: path, errno: errno) }
            if n == 0 { return out }
            out.append(contentsOf: chunk[0..<n])
            if out.count > limit { throw .io(operation: "read", path: path, errno: EFBIG) }
        }
    }

    /// Closes now rather than at the end of the owner's scope: consuming
    /// `self` ends its lifetime, and `deinit` closes.
    consuming func close() {}

    deinit { _ = Glibc.close(rawValue) }

    private func check(_ result: Int32, _ operation: String) throws(HaulError) {
        if result < 0 { throw .io(operation: operation, path: path, errno: errno) }
    }
}
