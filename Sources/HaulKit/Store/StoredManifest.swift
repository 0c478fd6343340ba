import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A named manifest read from either tree, checked as Ollama checks it
/// (`manifest/manifest.go` `OpenVerifiedManifest`):
///
/// - a symbolic link (in either tree) counts only if it leads to
///   `blobs/sha256-<hex>` of this store, the very file, and the bytes hash
///   to `<hex>`: a link into another store, to `/etc/passwd` or to a
///   renamed blob is an error naming the link, and nothing outside the
///   store is read;
/// - a regular file (a legacy manifest, or a v2 entry Ollama made as a hard
///   link or copy) must be inside its tree after every link on its path is
///   resolved; its digest is the SHA-256 of its bytes.
public struct StoredManifest: Sendable {
    /// What the bytes are.
    public enum Content: Sendable {
        /// A runnable manifest.
        case image(Manifest)
        /// A manifest list: one child per runner.
        case list(ManifestList)
    }

    /// The name, as the store identifies it (`ModelName.storeIdentity`).
    public let name: ModelName
    /// The entry's path.
    public let path: String
    /// The tree it is in.
    public let root: ManifestRoot
    /// The bytes.
    public let raw: [UInt8]
    /// Their SHA-256: the tag's digest at its registry.
    public let digest: Digest
    /// The blob the entry links to, when it is a link (its manifest blob).
    public let linkedBlob: Digest?
    /// When the entry (followed to its blob) was last written.
    public let modified: Date
    /// The decoded bytes.
    public let content: Content

    /// The media type to serve the bytes under.
    public var mediaType: String {
        switch content {
        case .image(let manifest): return manifest.mediaType
        case .list: return ManifestList.mediaType
        }
    }

    /// Reads and checks the entry at `path` in `root` of `store`.
    static func read(_ path: String, name: ModelName, root: ManifestRoot, store: ModelStore) throws(HaulError)
        -> StoredManifest
    {
        let (entry, linked, mtime) = try verifiedEntry(path, root: root, store: store)
        let content: Content
        switch entry.content {
        case .success(let decoded): content = decoded
        case .failure(let error):
            throw .storedManifest(path: path, problem: "is not a manifest Haul can read (\(error))")
        }
        return StoredManifest(
            name: name.storeIdentity, path: path, root: root, raw: entry.raw, digest: entry.digest,
            linkedBlob: linked, modified: Date(timeIntervalSince1970: mtime), content: content)
    }

    /// The entry's bytes once checked, the blob it links to (if a link),
    /// and its modification time.
    static func verifiedBytes(_ path: String, root: ManifestRoot, store: ModelStore)
        throws(HaulError) -> (bytes: [UInt8], linked: Digest?, mtime: Double)
    {
        let (entry, linked, mtime) = try verifiedEntry(path, root: root, store: store)
        return (entry.raw, linked, mtime)
    }

    /// The entry's bytes, digest and decoding once checked (from
    /// `ManifestCache` when this very file was read before), the blob it
    /// links to (if a link), and its modification time.
    static func verifiedEntry(_ path: String, root: ManifestRoot, store: ModelStore)
        throws(HaulError) -> (entry: ManifestCache.Entry, linked: Digest?, mtime: Double)
    {
        var st = stat()
        guard lstat(path, &st) == 0 else {
            throw errno == ENOENT ? HaulError.modelNotFound(path) : .io(operation: "lstat", path: path, errno: errno)
        }
        switch st.st_mode & S_IFMT {
        case S_IFLNK:
            return try linkedEntry(path, store: store)
        case S_IFREG:
            let directory = store.directory(of: root)
            guard let real = realPath(path), let realRoot = realPath(directory), real.hasPrefix(realRoot + "/") else {
                throw .storedManifest(path: path, problem: "resolves outside \(directory)")
            }
            let fd = try FileDescriptor.open(real, O_RDONLY | O_NOFOLLOW)
            let status = try fd.status()
            let entry = try cached(fd, status, path: path)
            return (entry, nil, Self.seconds(status.st_mtim))
        default:
            throw .storedManifest(path: path, problem: "is neither a file nor a link to a blob")
        }
    }

    /// A link's bytes: only from this store's `blobs/sha256-<hex>`, only if
    /// the link leads to that very file, only if they hash to `<hex>`.
    private static func linkedEntry(_ path: String, store: ModelStore) throws(HaulError) -> (
        entry: ManifestCache.Entry, linked: Digest?, mtime: Double
    ) {
        guard let target = realPath(path) else {
            throw .storedManifest(path: path, problem: "is a link to a missing blob (\(linkText(path)))")
        }
        let base = FileSystem.basename(of: target)
        guard base.hasPrefix("sha256-"), let digest = Digest(ollamaSpelling: base) else {
            throw .storedManifest(path: path, problem: "links to \(HaulError.quoted(target)), which is not a blob")
        }
        let blob = store.blobPath(digest)
        var linked = stat()
        guard stat(path, &linked) == 0,
            let fd = try? FileDescriptor.open(blob, O_RDONLY | O_NOFOLLOW),
            let status = try? fd.status(),
            status.st_dev == linked.st_dev, status.st_ino == linked.st_ino
        else {
            throw .storedManifest(path: path, problem: "links to \(HaulError.quoted(target)), not to \(blob)")
        }
        let entry = try cached(fd, status, path: path)
        guard entry.digest == digest else {
            throw .storedManifest(path: path, problem: "links to \(blob), whose bytes do not hash to its name")
        }
        return (entry, digest, seconds(status.st_mtim))
    }

    /// The open file's entry: from the cache, or read (at most
    /// `Manifest.maxBytes`; a larger file is refused without reading it).
    static func cached(_ fd: borrowing FileDescriptor, _ status: stat, path: String) throws(HaulError)
        -> ManifestCache.Entry
    {
        guard Int64(status.st_size) <= Int64(Manifest.maxBytes) else {
            throw .storedManifest(path: path, problem: "is larger than \(Manifest.maxBytes) bytes")
        }
        return try ManifestCache.shared.entry(status) { () throws(HaulError) in try readBounded(fd, path: path) }
    }

    private static func readBounded(_ fd: borrowing FileDescriptor, path: String) throws(HaulError) -> [UInt8] {
        do {
            return try fd.readAll(limit: Manifest.maxBytes)
        } catch .io(_, _, EFBIG) {
            throw .storedManifest(path: path, problem: "is larger than \(Manifest.maxBytes) bytes")
        }
    }

    static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    static func linkText(_ path: String) -> String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink(path, &buffer, buffer.count - 1)
        guard n > 0 else { return "?" }
        return HaulError.quoted(String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self))
    }

    private static func seconds(_ time: timespec) -> Double { Double(time.tv_sec) + Double(time.tv_nsec) / 1e9 }
}
