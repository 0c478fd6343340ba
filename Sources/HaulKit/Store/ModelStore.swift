import Foundation

/// A model as it is stored locally: one row of `haul list` and
/// `/api/tags`. A plain manifest is one model; a manifest list is one row
/// per child present in the store, as Ollama lists it.
public struct LocalModel: Sendable, Equatable {
    /// The model's name, as stored.
    public let name: ModelName
    /// The row's digest as Ollama shows it: the manifest's SHA-256, or for
    /// a list's child, the child's digest.
    public let id: Digest
    /// Bytes of all blobs the manifest references.
    public let size: Int64
    /// When its manifest was written.
    public let modified: Date
    /// The runnable manifest (for a list, this row's child).
    public let manifest: Manifest
    /// The runner the manifest or its list entry names ("" when neither does).
    public let runner: String
    /// The digest the name points at: the list's for a list's child, else `id`.
    public let tagDigest: Digest
    /// The manifest blobs the row relies on (a v2 entry's linked blob, a
    /// list child's blob), with their sizes.
    public let manifestBlobs: [Layer]

    public static func == (a: LocalModel, b: LocalModel) -> Bool {
        a.name == b.name && a.id == b.id && a.size == b.size && a.modified == b.modified && a.tagDigest == b.tagDigest
    }
}

/// Ollama's model directory (Ollama's `manifest/paths.go`, `manifest/manifest.go`):
///
///     $OLLAMA_MODELS/blobs/sha256-<hex>
///     $OLLAMA_MODELS/manifests/<host>/<namespace>/<model>/<tag>      (raw bytes; Ollama before 0.40)
///     $OLLAMA_MODELS/manifests-v2/<host>/<namespace>/<model>/<tag>   (a link to the manifest blob; 0.40 on)
///
/// plus Haul's own `.haul/` (partials of downloads in progress, pins, locks).
/// Both trees are read everywhere; `layout` says which one writes go to.
public struct ModelStore: Sendable {
    /// The models directory (Ollama's `OLLAMA_MODELS`).
    public let root: String
    /// The layout writes use.
    public let layout: StoreLayout

    /// The store at `root` (a trailing slash is dropped); nothing is created until a pull writes.
    public init(root: String, layout: StoreLayout = .auto) {
        self.root = root.count > 1 && root.hasSuffix("/") ? String(root.dropLast()) : root
        self.layout = layout
    }

    /// Ollama's default, `~/.ollama/models`, with the home directory taken
    /// from the user database rather than `$HOME`: no environment variable
    /// decides it.
    public static var ollamaDefault: ModelStore {
        ModelStore(root: FileSystem.userHomeDirectory() + "/.ollama/models")
    }

    /// `$OLLAMA_MODELS` (trimmed of spaces and quotes, as Ollama does), else
    /// `~/.ollama/models`.
    /// `HAUL_STORE_LAYOUT` (`auto`, `v1`, `v2`) sets the layout writes use.
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment)
        -> ModelStore
    {
        let layout = StoreLayout.fromEnvironment(environment) ?? .auto
        let raw = OllamaEnvironment.string("OLLAMA_MODELS", environment)
        if !raw.isEmpty { return ModelStore(root: raw, layout: layout) }
        let home = environment["HOME"] ?? NSHomeDirectory()
        return ModelStore(root: home + "/.ollama/models", layout: layout)
    }

    /// The same store, writing `layout`.
    public func with(layout: StoreLayout) -> ModelStore { ModelStore(root: root, layout: layout) }

    /// `blobs/`: verified blobs, `sha256-<hex>`.
    public var blobsDirectory: String { root + "/blobs" }
    /// `manifests/`: `<host>/<namespace>/<model>/<tag>`, the registry's bytes (the legacy tree).
    public var manifestsDirectory: String { root + "/manifests" }
    /// `.haul/partials/`: downloads in progress and interrupted, out of Ollama's sight.
    public var partialsDirectory: String { root + "/.haul/partials" }

    /// Where a verified blob is stored.
    public func blobPath(_ digest: Digest) -> String { blobsDirectory + "/" + digest.fileName }
    func partialPath(_ digest: Digest) -> String { partialsDirectory + "/" + digest.fileName + "-partial" }

    /// Where a model's legacy manifest file is, by the name exactly as given.
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
    /// Ollama's `getExistingName` (`server/routes.go`) matches, in either
    /// tree and under either spelling of the public registry:
    /// `Library/LLama3:Latest` finds `library/llama3:latest`, so a pull or
    /// show under another spelling never makes a second copy. Nil when no
    /// such model is stored.
    public func existingName(_ name: ModelName) -> ModelName? {
        let identity = name.storeIdentity
        if resolve(identity) != nil { return identity }
        let wanted = identity.description.lowercased()
        return manifestRefs().lazy.compactMap(\.name).first { $0.description.lowercased() == wanted }
    }

    /// The runnable manifest of `name` (matched without case): the stored
    /// one, or the child of a stored list that Ollama would run. Nil when
    /// no such model is stored; an entry that cannot be used is an error
    /// naming it.
    public func manifest(for name: ModelName) throws(HaulError) -> Manifest? {
        guard let stored = try storedManifest(for: name) else { return nil }
        return try runnable(stored).manifest
    }

    /// Every stored model, as `ollama list` enumerates them (both trees,
    /// a row per list child present); entries that cannot be read are
    /// skipped (`unreadableManifests` names them).
    public func list() -> [LocalModel] { catalog().models }

    /// What a removal did.
    public struct Removal: Sendable {
        /// Blobs deleted.
        public var removed: [Digest] = []
        /// Named manifests that could not be read: the blobs only they
        /// name were not protected by them (they keep what they name when
        /// their bytes can be read at all).
        public var unreadable: [UnreadableManifest] = []
        /// Blobs kept because they are younger than the grace period.
        public var young: [Digest] = []
    }

    /// Deletes a model's entries (its v2 entry and legacy files under both
    /// public spellings) and every blob they kept that nothing else keeps
    /// (Ollama's `RemoveNamed`). An entry that cannot be read is removed
    /// too.
    @discardableResult
    public func remove(_ name: ModelName) throws(HaulError) -> Removal {
        guard let stored = existingName(name) else { throw .modelNotFound(name.displayShortest) }
        let candidates = retainedDigests(of: stored)
        try removeEntry(v2Path(stored), below: manifestsV2Directory)
        for path in legacyPaths(stored) { try removeEntry(path, below: manifestsDirectory) }
        return try removeUnreferencedBlobs(candidates)
    }

    /// The one line a sweep says about the named manifests it could not
    /// read: the first, and how many more.
    public static func sweepNotice(_ first: UnreadableManifest, count: Int) -> String {
        let more = count > 1 ? " (and \(count - 1) more)" : ""
        return
            "kept going without \(first.path)\(more): \(first.problem); only blobs no readable manifest names were removed"
    }

    /// Blobs younger than this are never deleted by pruning: another
    /// process may have just fetched one and be about to write the manifest
    /// that names it (Ollama's `layerPruneGracePeriod`, `server/images.go`).
    public static let pruneGracePeriod: Double = 3600

    /// Deletes each of `candidates` that no named manifest in either tree
    /// keeps (`ManifestRetention`), no pull in flight in any process is
    /// about to reference, and, with `grace`, that is older than `grace`
    /// seconds.
    @discardableResult
    func removeUnreferencedBlobs(_ candidates: Set<Digest>, grace: Double = 0) throws(HaulError) -> Removal {
        try StorePins(store: self).withPinned { (pinned) throws(HaulError) in
            var removal = Removal()
            let (kept, unreadable) = retainedDigests()
            removal.unreadable = unreadable
            let now = Date().timeIntervalSince1970
            for digest in candidates.subtracting(kept).subtracting(pinned).sorted() {
                let blob = blobPath(digest)
                if grace > 0, let mtime = FileSystem.modificationTime(blob), now - mtime < grace {
                    removal.young.append(digest)
                    continue
                }
                if unlink(blob) == 0 {
                    removal.removed.append(digest)
                } else if errno != ENOENT {
                    throw .io(operation: "remove", path: blob, errno: errno)
                }
            }
            return removal
        }
    }
}
