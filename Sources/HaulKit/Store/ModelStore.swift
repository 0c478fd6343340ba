import Foundation

/// A model as it is stored locally.
public struct LocalModel: Sendable, Equatable {
    /// The model's name, as stored.
    public let name: ModelName
    /// SHA-256 of the manifest bytes, which is also the registry's digest.
    public let id: Digest
    /// Bytes of all blobs the manifest references.
    public let size: Int64
    /// When its manifest was written.
    public let modified: Date
    /// The stored manifest.
    public let manifest: Manifest

    public static func == (a: LocalModel, b: LocalModel) -> Bool {
        a.name == b.name && a.id == b.id && a.size == b.size && a.modified == b.modified
    }
}

/// Ollama's model directory (Ollama's `manifest/paths.go`, `manifest/manifest.go`):
///
///     $OLLAMA_MODELS/blobs/sha256-<hex>
///     $OLLAMA_MODELS/manifests/<host>/<namespace>/<model>/<tag>   (raw bytes)
///
/// plus Haul's own `.haul/partials/` for downloads in progress.
public struct ModelStore: Sendable {
    /// The models directory (Ollama's `OLLAMA_MODELS`).
    public let root: String

    /// The store at `root` (a trailing slash is dropped); nothing is created until a pull writes.
    public init(root: String) {
        self.root = root.count > 1 && root.hasSuffix("/") ? String(root.dropLast()) : root
    }

    /// Ollama's default, `~/.ollama/models`, with the home directory taken
    /// from the user database rather than `$HOME`: no environment variable
    /// decides it.
    public static var ollamaDefault: ModelStore {
        ModelStore(root: FileSystem.userHomeDirectory() + "/.ollama/models")
    }

    /// `$OLLAMA_MODELS` (trimmed of spaces and quotes, as Ollama does), else
    /// `~/.ollama/models`.
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> ModelStore {
        let raw = OllamaEnvironment.string("OLLAMA_MODELS", environment)
        if !raw.isEmpty { return ModelStore(root: raw) }
        let home = environment["HOME"] ?? NSHomeDirectory()
        return ModelStore(root: home + "/.ollama/models")
    }

    /// `blobs/`: verified blobs, `sha256-<hex>`.
    public var blobsDirectory: String { root + "/blobs" }
    /// `manifests/`: `<host>/<namespace>/<model>/<tag>`, the registry's bytes.
    public var manifestsDirectory: String { root + "/manifests" }
    /// `.haul/partials/`: downloads in progress and interrupted, out of Ollama's sight.
    public var partialsDirectory: String { root + "/.haul/partials" }

    /// Where a verified blob is stored.
    public func blobPath(_ digest: Digest) -> String { blobsDirectory + "/" + digest.fileName }
    func partialPath(_ digest: Digest) -> String { partialsDirectory + "/" + digest.fileName + "-partial" }

    /// Where a model's manifest is stored, by the name exactly as given.
    public func manifestPath(_ name: ModelName) -> String {
        ([manifestsDirectory] + name.manifestPathComponents).joined(separator: "/")
    }

    /// A blob already stored with the size the manifest promises.
    public func hasBlob(_ layer: Layer) -> Bool {
        FileSystem.size(blobPath(layer.digest)) == layer.size
    }

    func prepareDirectories() throws(HaulError) {
        try FileSystem.makeDirectories(blobsDirectory)
        try FileSystem.makeDirectories(partialsDirectory)
    }

    /// The stored name `name` means, matched without regard to case as
    /// Ollama's `getExistingName` (`server/routes.go`) matches:
    /// `Library/LLama3:Latest` finds `library/llama3:latest`, so a pull or
    /// show under another spelling never makes a second copy. Nil when no
    /// such model is stored.
    public func existingName(_ name: ModelName) -> ModelName? {
        if FileSystem.exists(manifestPath(name)) { return name }
        var directory = manifestsDirectory
        var found: [String] = []
        for part in name.manifestPathComponents {
            guard let match = FileSystem.listDirectory(directory).first(where: { $0.lowercased() == part.lowercased() }) else {
                return nil
            }
            found.append(match)
            directory += "/" + match
        }
        guard FileSystem.exists(directory) else { return nil }
        return try? ModelName(host: found[0], namespace: found[1], model: found[2], tag: found[3])
    }

    /// Stores the manifest bytes atomically (after every blob is verified),
    /// under the name already stored if one differs only in case.
    public func writeManifest(_ manifest: Manifest, for name: ModelName) throws(HaulError) {
        let path = manifestPath(existingName(name) ?? name)
        try FileSystem.makeDirectories(FileSystem.parent(of: path))
        try FileSystem.writeAtomically(manifest.raw, to: path)
    }

    /// The stored manifest of `name` (matched without case), if any.
    public func manifest(for name: ModelName) throws(HaulError) -> Manifest? {
        guard let stored = existingName(name) else { return nil }
        let path = manifestPath(stored)
        return try Manifest(bytes: FileSystem.readFile(path, limit: Manifest.maxBytes))
    }

    /// Every stored model, as `ollama list` enumerates them
    /// (`manifests/*/*/*/*`); unreadable or invalid manifests are skipped.
    public func list() -> [LocalModel] {
        var models: [LocalModel] = []
        for host in FileSystem.listDirectory(manifestsDirectory) {
            for ns in FileSystem.listDirectory(manifestsDirectory + "/" + host) {
                for model in FileSystem.listDirectory(manifestsDirectory + "/" + host + "/" + ns) {
                    let dir = [manifestsDirectory, host, ns, model].joined(separator: "/")
                    for tag in FileSystem.listDirectory(dir) where !tag.hasPrefix(".") {
                        guard let name = try? ModelName(host: host, namespace: ns, model: model, tag: tag),
                              let manifest = try? self.manifest(for: name),
                              let mtime = FileSystem.modificationTime(manifestPath(name)) else { continue }
                        let size = manifest.layers.reduce(manifest.config.size) { $0 + $1.size }
                        models.append(LocalModel(name: name, id: manifest.digest, size: size,
                                                 modified: Date(timeIntervalSince1970: mtime), manifest: manifest))
                    }
                }
            }
        }
        return models.sorted { $0.modified > $1.modified }
    }

    /// Deletes a model's manifest and every blob no other manifest uses.
    public func remove(_ name: ModelName) throws(HaulError) {
        guard let stored = existingName(name), let manifest = try self.manifest(for: stored) else {
            throw .modelNotFound(name.displayShortest)
        }
        let path = manifestPath(stored)
        try FileSystem.check(unlink(path), "remove", path)
        // Remove now-empty parent directories up to manifests/, as Ollama does.
        var dir = FileSystem.parent(of: path)
        while dir != manifestsDirectory, dir.hasPrefix(manifestsDirectory), rmdir(dir) == 0 {
            dir = FileSystem.parent(of: dir)
        }
        try removeUnreferencedBlobs(Set(manifest.referencedDigests))
    }

    /// Deletes each of `candidates` that no stored manifest references and
    /// no pull in flight (in any process) is about to reference.
    func removeUnreferencedBlobs(_ candidates: Set<Digest>) throws(HaulError) {
        try StorePins(store: self).withPinned { (pinned) throws(HaulError) in
            let stillUsed = Set(list().flatMap(\.manifest.referencedDigests)).union(pinned)
            for digest in candidates.subtracting(stillUsed) {
                let blob = blobPath(digest)
                if unlink(blob) != 0 && errno != ENOENT {
                    throw .io(operation: "remove", path: blob, errno: errno)
                }
            }
        }
    }
}
