import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The staging directory of one `haul import`: every blob of the layout is
/// copied here and verified before any is stored. It lives in the store
/// (`.haul/import-XXXXXX`, named by mkdtemp, so nobody can predict it) and
/// is locked (`flock` on the directory) for as long as its import runs, so
/// the staging of a process that died (`kill -9`, a power cut) is told
/// from a live one by its lock alone and removed by the next import or
/// pull, or by `haul partials rm`.
struct ImportStaging: ~Copyable {
    let path: String
    private let lock: FileDescriptor

    /// Makes and locks a fresh staging directory. A sweep by another
    /// process can remove the directory between mkdtemp and the lock; the
    /// lock is then on a directory no longer at its path, and a new one is
    /// made.
    static func make(in store: ModelStore) throws(HaulError) -> ImportStaging {
        try FileSystem.makeDirectories(store.haulDirectory)
        for _ in 0..<8 {
            var template = Array((store.haulDirectory + "/" + ModelStore.importPrefix + "XXXXXX").utf8CString)
            guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
                throw .io(operation: "mkdtemp", path: store.haulDirectory, errno: errno)
            }
            let path = String(cString: made)
            let fd = try FileDescriptor.open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW)
            try fd.lock(.exclusive)
            if fd.isStillAtPath { return ImportStaging(path: path, lock: fd) }
        }
        throw .io(operation: "mkdtemp (the staging directory kept vanishing)", path: store.haulDirectory, errno: EAGAIN)
    }

    private init(path: String, lock: consuming FileDescriptor) {
        self.path = path
        self.lock = lock
    }

    /// Removes the directory; the lock goes with the value.
    func remove() {
        FileSystem.removeTree(path)
    }
}

/// An import's staging directory, as `haul partials` lists it.
public struct StagedImport: Sendable, Equatable {
    /// The directory's name under `.haul` (`import-…`).
    public let name: String
    /// Space its files occupy on disk.
    public let allocated: Int64
    /// When it last changed.
    public let modified: Date
    /// An import is running in it right now.
    public let inUse: Bool
}

extension ModelStore {
    static let importPrefix = "import-"

    var haulDirectory: String { root + "/.haul" }

    /// Every import staging directory, newest first.
    public func stagedImports() -> [StagedImport] {
        FileSystem.listDirectory(haulDirectory).filter { $0.hasPrefix(Self.importPrefix) }.compactMap { name in
            let path = haulDirectory + "/" + name
            var st = stat()
            guard lstat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else { return nil }
            return StagedImport(
                name: name, allocated: FileSystem.allocatedBytes(under: path),
                modified: Date(timeIntervalSince1970: Double(st.st_mtim.tv_sec)),
                inUse: !stagingIsDead(path))
        }.sorted { $0.modified > $1.modified }
    }

    /// Removes one staging directory that no running import holds.
    public func removeStagedImport(_ name: String) throws(HaulError) {
        guard name.hasPrefix(Self.importPrefix), !name.contains("/") else {
            throw .io(operation: "remove import staging", path: name, errno: EINVAL)
        }
        let path = haulDirectory + "/" + name
        guard FileSystem.exists(path) else { throw .io(operation: "remove import staging", path: path, errno: ENOENT) }
        guard let held = lockedIfDead(path) else {
            throw .io(operation: "remove import staging (an import is using it)", path: path, errno: EBUSY)
        }
        FileSystem.removeTree(path)
        held.close()
    }

    /// Removes the staging of every import whose process is gone; returns
    /// the bytes freed. Called as an import or a pull starts.
    @discardableResult
    public func removeDeadStagedImports() -> Int64 {
        var freed: Int64 = 0
        for staged in stagedImports() where !staged.inUse {
            let path = haulDirectory + "/" + staged.name
            guard let held = lockedIfDead(path) else { continue }
            FileSystem.removeTree(path)
            held.close()
            freed += staged.allocated
        }
        return freed
    }

    private func stagingIsDead(_ path: String) -> Bool {
        guard let held = lockedIfDead(path) else { return false }
        held.unlock()
        return true
    }

    /// The directory's lock, when no import holds it. Staging made before
    /// these locks (`import-<pid>-<n>`) is dead once its process is.
    private func lockedIfDead(_ path: String) -> FileDescriptor? {
        guard let fd = try? FileDescriptor.open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW),
            (try? fd.tryLock(.exclusive)) == true, fd.isStillAtPath
        else { return nil }
        let parts = FileSystem.basename(of: path).dropFirst(Self.importPrefix.count).split(separator: "-")
        if parts.count == 2, let pid = Int32(parts[0]), UInt32(parts[1]) != nil, pid > 0,
            kill(pid, 0) == 0 || errno == EPERM
        {
            return nil
        }
        return fd
    }
}
