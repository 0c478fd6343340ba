internal import CShims
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Thin, typed wrappers over the system calls the store uses. Each throws a
/// `HaulError.io` that names the operation and path, as Ollama's messages do
/// (`write …/blobs/sha256-…-partial: no space left on device`).
enum FileSystem {
    static func retrying<T: BinaryInteger>(_ body: () -> T) -> T {
        while true {
            let r = body()
            if r >= 0 || errno != EINTR { return r }
        }
    }

    static func check(_ result: Int32, _ operation: String, _ path: String) throws(HaulError) {
        if result < 0 { throw .io(operation: operation, path: path, errno: errno) }
    }

    /// `mkdir -p` with mode 0755, like Ollama's MkdirAll.
    static func makeDirectories(_ path: String) throws(HaulError) {
        var built = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            built += "/" + part
            if mkdir(built, 0o755) != 0 && errno != EEXIST {
                throw .io(operation: "mkdir", path: built, errno: errno)
            }
        }
    }

    static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    /// The user's home directory from the user database (getpwuid_r), not
    /// `$HOME`; "/" if the user has no entry.
    static func userHomeDirectory() -> String {
        var buffer = [CChar](repeating: 0, count: 16 << 10)
        // pw_dir points into the buffer: read it while the buffer is pinned.
        return buffer.withUnsafeMutableBufferPointer { storage in
            var entry = passwd()
            var result: UnsafeMutablePointer<passwd>?
            guard getpwuid_r(getuid(), &entry, storage.baseAddress!, storage.count, &result) == 0, result != nil else {
                return "/"
            }
            return String(cString: entry.pw_dir)
        }
    }

    static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// A directory itself, not a link to one.
    static func isRealDirectory(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// Something is at `path`, a dangling link included.
    static func lexists(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0
    }

    /// A symbolic link whose target does not exist.
    static func isDanglingLink(_ path: String) -> Bool {
        var st = stat()
        guard lstat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFLNK else { return false }
        return stat(path, &st) != 0 && errno == ENOENT
    }

    /// File size, or nil if the file does not exist.
    static func size(_ path: String) -> Int64? {
        var st = stat()
        guard stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return nil }
        return Int64(st.st_size)
    }

    static func modificationTime(_ path: String) -> Double? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return Double(st.st_mtim.tv_sec) + Double(st.st_mtim.tv_nsec) / 1e9
    }

    static func readFile(_ path: String, limit: Int) throws(HaulError) -> [UInt8] {
        try FileDescriptor.open(path, O_RDONLY).readAll(limit: limit)
    }

    /// Makes a rename or create in `directory` durable.
    static func syncDirectory(_ directory: String) throws(HaulError) {
        try FileDescriptor.open(directory, O_RDONLY | O_DIRECTORY).sync()
    }

    /// Replaces `path` with `bytes` atomically: a reader sees the old file
    /// or the new one, never a torn one, even across a crash. Without
    /// `syncDirectory` the rename itself may be lost in a power cut, leaving
    /// the old file: fine for a journal, whose old version is still valid.
    /// Without `fsyncFile` only a process crash is covered.
    static func writeAtomically(
        _ bytes: [UInt8], to path: String, fsyncFile: Bool = true,
        syncDirectory sync: Bool = true, permissions: mode_t = 0o644
    ) throws(HaulError) {
        let directory = parent(of: path)
        let file = try createTemporary(for: path, permissions: permissions)
        let temp = file.path
        do throws(HaulError) {
            try file.descriptor.writeAll(bytes)
            if fsyncFile { try file.descriptor.sync() }
        } catch {
            unlink(temp)
            throw error
        }
        if rename(temp, path) != 0 {
            let code = errno
            unlink(temp)
            throw .io(operation: "rename", path: path, errno: code)
        }
        if sync { try syncDirectory(directory) }
    }

    /// A new file beside `path` (`.<name>.haul-tmp-<random>`), made with
    /// O_EXCL|O_NOFOLLOW: nobody can predict its name, and a file or link
    /// planted under it is never opened, let alone written through.
    static func createTemporary(for path: String, permissions: mode_t = 0o644) throws(HaulError) -> TemporaryFile {
        try createUnique(O_WRONLY, permissions: permissions) { temporaryName(for: path) }
    }

    /// A new file under the first name `name()` gives that is free, made
    /// with O_CREAT|O_EXCL|O_NOFOLLOW and opened with `flags`.
    static func createUnique(_ flags: Int32, permissions: mode_t = 0o644, name: () -> String) throws(HaulError)
        -> TemporaryFile
    {
        var last = ""
        for _ in 0..<16 {
            last = name()
            do {
                let fd = try FileDescriptor.open(last, flags | O_CREAT | O_EXCL | O_NOFOLLOW, permissions: permissions)
                return TemporaryFile(descriptor: fd, path: last)
            } catch .io(_, _, EEXIST) {
                continue
            }
        }
        throw .io(operation: "create a file under a new name", path: last, errno: EEXIST)
    }

    /// `count` random hex digits, for names nobody can predict.
    static func randomHex(_ count: Int) -> String {
        (0..<count).map { _ in String(UInt8.random(in: 0...15), radix: 16) }.joined()
    }

    /// A file `createTemporary` made, open for writing.
    struct TemporaryFile: ~Copyable {
        let descriptor: FileDescriptor
        let path: String
    }

    /// A new directory beside `path` (`.<name>.haul-tmp-XXXXXX`), by mkdtemp:
    /// an unpredictable name, made by this call, readable by its owner only.
    static func makeTemporaryDirectory(for path: String) throws(HaulError) -> String {
        var template = Array((parent(of: path) + "/." + basename(of: path) + ".haul-tmp-XXXXXX").utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw .io(operation: "mkdtemp", path: parent(of: path), errno: errno)
        }
        return String(cString: made)
    }

    private static func temporaryName(for path: String) -> String {
        parent(of: path) + "/." + basename(of: path) + ".haul-tmp-" + randomHex(12)
    }

    /// Renames `from` to `to` unless something is at `to` already (EEXIST):
    /// a name planted at `to` meanwhile is neither replaced nor followed.
    static func renameNoReplace(_ from: String, _ to: String) throws(HaulError) {
        if hl_rename_noreplace(from, to) != 0 {
            throw .io(operation: "rename", path: to, errno: errno)
        }
    }

    static func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    static func basename(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: slash)...])
    }

    /// Removes a directory tree; symbolic links in it are removed, never
    /// followed.
    static func removeTree(_ path: String) { try? FileManager.default.removeItem(atPath: path) }

    /// Disk space of the files under `path` (symbolic links not followed).
    static func allocatedBytes(under path: String) -> Int64 {
        var st = stat()
        guard lstat(path, &st) == 0 else { return 0 }
        var total = Int64(st.st_blocks) * 512
        if (st.st_mode & S_IFMT) == S_IFDIR {
            for name in listDirectory(path) { total += allocatedBytes(under: path + "/" + name) }
        }
        return total
    }

    static func listDirectory(_ path: String) -> [String] {
        guard let dir = opendir(path) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    /// Bytes available to this user on the filesystem holding `path`.
    static func availableSpace(_ path: String) -> Int64? {
        var st = statvfs()
        guard statvfs(path, &st) == 0 else { return nil }
        return Int64(st.f_bavail) * Int64(st.f_frsize)
    }
}
