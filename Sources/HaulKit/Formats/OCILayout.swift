internal import CShims
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Models as an OCI image layout (`oci-layout`, `index.json`,
/// `blobs/sha256/<hex>`), a directory or a `.tar` of one: the form any
/// OCI-aware transfer system (skopeo, oras, registries) can carry into an
/// air-gapped network. Each model is one `index.json` entry whose
/// `org.opencontainers.image.ref.name` is its name; the manifest is stored
/// byte for byte, so its digest is the registry's.
public struct OCILayout: Sendable {
    /// The store models are exported from and imported into.
    public let store: ModelStore

    /// Layouts of `store`'s models.
    public init(store: ModelStore) { self.store = store }

    static let refName = "org.opencontainers.image.ref.name"

    private struct Index: Codable {
        struct Descriptor: Codable {
            var mediaType: String
            var digest: String
            var size: Int64
            var annotations: [String: String]?
        }
        var schemaVersion = 2
        var mediaType: String? = "application/vnd.oci.image.index.v1+json"
        var manifests: [Descriptor]
    }

    /// What an export or import moved.
    public struct Report: Sendable {
        /// The models moved.
        public var models: [ModelName] = []
        /// Blobs written (blobs already present are not counted).
        public var blobs = 0
        /// Bytes of those blobs.
        public var bytes: Int64 = 0
    }

    // MARK: export

    /// Writes `models` to `path` (a new directory, or a `.tar` when the path
    /// ends so). Blobs are hard-linked into a directory on the same
    /// filesystem, streamed otherwise. Written under a temporary name and
    /// renamed at the end: a failure leaves nothing.
    public func export(_ models: [ModelName], to path: String) throws(HaulError) -> Report {
        guard !FileSystem.exists(path) else { throw .archive(path, "exists already; choose a new path") }
        var report = Report()
        var descriptors: [Index.Descriptor] = []
        var blobs: [Layer] = []
        // Manifest bytes to write as blobs: each model's own, and the
        // children of a list that are in this store.
        var manifestBlobs: [(digest: Digest, raw: [UInt8])] = []
        for name in models {
            let exported = try Self.exported(name, from: store)
            for image in exported.images {
                for layer in try image.blobs where !blobs.contains(where: { $0.digest == layer.digest }) {
                    guard store.hasBlob(layer) else {
                        throw .archive(
                            store.blobPath(layer.digest), "missing or the wrong size; run 'haul verify --repair'")
                    }
                    blobs.append(layer)
                }
            }
            for raw in [exported.raw] + exported.children {
                let digest = Digest(hashing: raw)
                if !manifestBlobs.contains(where: { $0.digest == digest }) { manifestBlobs.append((digest, raw)) }
            }
            descriptors.append(
                .init(
                    mediaType: exported.mediaType, digest: Digest(hashing: exported.raw).description,
                    size: Int64(exported.raw.count), annotations: [Self.refName: name.displayShortest]))
            report.models.append(name)
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let index = Array((try? encoder.encode(Index(manifests: descriptors))) ?? Data())
        let layoutFile = Array(#"{"imageLayoutVersion":"1.0.0"}"#.utf8)
        // The output is made under a name nobody can predict, by this call
        // (O_EXCL|O_NOFOLLOW, mkdtemp), so nothing another user planted
        // beside `path` is written through; it takes its name at the end
        // only if that name is still free.
        let tar = path.hasSuffix(".tar")
        var temp = ""
        do {
            if tar {
                let file = try FileSystem.createTemporary(for: path)
                temp = file.path
                let out = file.descriptor
                func add(_ name: String, _ bytes: [UInt8]) throws(HaulError) {
                    try out.writeAll(
                        TarArchive.header(name: name, size: Int64(bytes.count), directory: false) + bytes
                            + padding(Int64(bytes.count)))
                }
                try add("oci-layout", layoutFile)
                try add("index.json", index)
                for name in ["blobs", "blobs/sha256"] {
                    try out.writeAll(TarArchive.header(name: name + "/", size: 0, directory: true))
                }
                for manifest in manifestBlobs { try add("blobs/sha256/" + manifest.digest.hex, manifest.raw) }
                for layer in blobs {
                    let source = try FileDescriptor.open(store.blobPath(layer.digest), O_RDONLY)
                    try out.writeAll(
                        TarArchive.header(name: "blobs/sha256/" + layer.digest.hex, size: layer.size, directory: false))
                    try TarArchive.copy(from: source, offset: 0, length: layer.size, to: out)
                    try out.writeAll(padding(layer.size))
                }
                try out.writeAll([UInt8](repeating: 0, count: 2 * TarArchive.block))
                try out.sync()
            } else {
                temp = try FileSystem.makeTemporaryDirectory(for: path)
                // mkdtemp makes it 0700; a layout is for others to read.
                chmod(temp, 0o755)
                try FileSystem.makeDirectories(temp + "/blobs/sha256")
                try FileSystem.writeAtomically(layoutFile, to: temp + "/oci-layout", syncDirectory: false)
                try FileSystem.writeAtomically(index, to: temp + "/index.json", syncDirectory: false)
                for manifest in manifestBlobs {
                    try FileSystem.writeAtomically(
                        manifest.raw, to: temp + "/blobs/sha256/" + manifest.digest.hex, syncDirectory: false)
                }
                for layer in blobs {
                    try Self.place(
                        store.blobPath(layer.digest), at: temp + "/blobs/sha256/" + layer.digest.hex, size: layer.size,
                        linking: true)
                }
            }
            try FileSystem.renameNoReplace(temp, path)
        } catch {
            if !temp.isEmpty { FileSystem.removeTree(temp) }
            if case .io("rename", _, EEXIST) = error { throw .archive(path, "exists already; choose a new path") }
            throw error
        }
        report.blobs = blobs.count
        report.bytes = blobs.reduce(0) { $0 + $1.size }
        return report
    }

    /// What one model puts in a layout: the bytes its index entry names,
    /// typed for it, and the manifests they stand for.
    private struct Exported {
        var raw: [UInt8]
        var mediaType: String
        /// The runnable manifests whose blobs go along.
        var images: [Manifest]
        /// A list's reference children present here, as their blobs' bytes.
        var children: [[UInt8]] = []
    }

    private static func exported(_ name: ModelName, from store: ModelStore) throws(HaulError) -> Exported {
        guard let stored = try store.storedManifest(for: name) else { throw .modelNotFound(name.displayShortest) }
        switch stored.content {
        case .image(let manifest):
            // Typed as an OCI manifest in the index: containers/image (skopeo,
            // podman) looks only at OCI-typed entries of an OCI layout, and a
            // Docker v2 schema 2 manifest (Ollama's) has the same structure.
            // The manifest bytes themselves are the registry's, unchanged.
            return Exported(
                raw: stored.raw, mediaType: "application/vnd.oci.image.manifest.v1+json", images: [manifest])
        case .list(let list):
            // The list as stored (its digest is the tag's), with the children
            // this store has; those it never pulled stay out, as they are out
            // of the store. Typed as what it is: no OCI tool can use an
            // Ollama list, and calling it an OCI index would invite them to try.
            var exported = Exported(raw: stored.raw, mediaType: ManifestList.mediaType, images: [])
            for child in list.children {
                guard let manifest = try store.childManifest(child) else { continue }
                exported.images.append(manifest)
                if child.inline == nil { exported.children.append(manifest.raw) }
            }
            guard !exported.images.isEmpty else {
                throw .storedManifest(
                    path: stored.path,
                    problem: "is a manifest list none of whose children is in the store; "
                        + "pull \(name.displayShortest) again")
            }
            return exported
        }
    }

    private func padding(_ size: Int64) -> [UInt8] {
        [UInt8](
            repeating: 0,
            count: Int((Int64(TarArchive.block) - size % Int64(TarArchive.block)) % Int64(TarArchive.block)))
    }

    /// `target` with `source`'s bytes: a reflink (copy-on-write) where the
    /// filesystem can; else, with `linking`, a hard link on the same
    /// filesystem; else a streamed copy.
    static func place(_ source: String, at target: String, size: Int64, linking: Bool) throws(HaulError) {
        let from = try FileDescriptor.open(source, O_RDONLY)
        let to = try FileDescriptor.open(target, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW)
        if hl_reflink(to.rawValue, from.rawValue) == 0 { return }
        if linking {
            to.close()
            unlink(target)
            if link(source, target) == 0 { return }
            let reopened = try FileDescriptor.open(target, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW)
            try TarArchive.copy(from: from, offset: 0, length: size, to: reopened)
            return try reopened.sync()
        }
        try TarArchive.copy(from: from, offset: 0, length: size, to: to)
        try to.sync()
    }

    // MARK: import

    /// Reads the layout at `path` (a directory or a `.tar`), verifies every
    /// manifest and blob against its digest, and only then stores them in
    /// Ollama's layout. A bad or missing blob is refused by name and
    /// nothing is stored.
    public func importLayout(from path: String) throws(HaulError) -> Report {
        // Blobs are verified as copies of Haul's own, in a staging directory
        // in the store (a tar's entries are unpacked there; a directory's
        // blobs are copied there), so what was checked is what is stored,
        // whatever happens to the source meanwhile.
        // Staging left by imports that died is removed first.
        store.removeDeadStagedImports()
        let stagingDirectory = try ImportStaging.make(in: store)
        defer { stagingDirectory.remove() }
        let staging = stagingDirectory.path
        try FileSystem.makeDirectories(staging + "/blobs/sha256")
        let tar = !FileSystem.isDirectory(path)
        if tar { try Self.extract(path, into: staging) }
        let directory = tar ? staging : path
        guard let layout = try? Self.readRegular(directory + "/oci-layout", limit: 4096),
            String(decoding: layout, as: UTF8.self).contains("\"imageLayoutVersion\"")
        else {
            throw .archive(path, "not an OCI image layout (no oci-layout file)")
        }
        let indexBytes: [UInt8]
        do { indexBytes = try Self.readRegular(directory + "/index.json", limit: 4 << 20) } catch {
            throw .archive(path, "no readable index.json")
        }
        guard let index = try? JSONDecoder().decode(Index.self, from: Data(indexBytes)), index.schemaVersion == 2 else {
            throw .archive(path, "index.json is not an OCI image index")
        }
        /// Puts `layer` in the staging directory, checked.
        func stage(_ layer: Layer, of ref: String) throws(HaulError) {
            let file = directory + "/blobs/sha256/" + layer.digest.hex
            let staged = staging + "/blobs/sha256/" + layer.digest.hex
            guard FileSystem.exists(file) else {
                throw .archive(path, "blob \(layer.digest) of \(ref) is missing; nothing was imported")
            }
            if !tar {
                // Only a regular file of the declared size is copied: a
                // link to /dev/zero or a FIFO would feed the staging
                // area whatever it holds before any check.
                let source = try Self.openRegular(file)
                let size = Int64(try source.status().st_size)
                guard size == layer.size else {
                    throw .archive(
                        path,
                        "blob \(layer.digest) of \(ref) is \(size) bytes, the manifest says \(layer.size); "
                            + "nothing was imported")
                }
                try Self.copy(source, to: staged, size: layer.size)
            }
            let fd = try FileDescriptor.open(staged, O_RDONLY)
            let size = Int64(try fd.status().st_size)
            let got = size == layer.size ? try FileDigest.of(fd, size: size) : nil
            guard got == layer.digest else {
                let why =
                    got.map { "its bytes hash to \($0)" } ?? "it is \(size) bytes, the manifest says \(layer.size)"
                throw .archive(path, "blob \(layer.digest) of \(ref) is corrupt: \(why); nothing was imported")
            }
        }

        // Everything is checked before anything is stored.
        var models: [(name: ModelName, raw: [UInt8])] = []
        var children: [Digest: [UInt8]] = [:]
        var blobs: [Layer] = []
        var manifestBytes = 0
        let storeLayout = store.effectiveLayout
        for (i, entry) in index.manifests.enumerated() {
            guard let ref = entry.annotations?[Self.refName], let name = try? ModelName(parsing: ref) else {
                throw .archive(path, "index.json entry \(i) has no \(Self.refName) that is a model name")
            }
            guard let digest = try? Digest(parsing: entry.digest), entry.size <= Manifest.maxBytes else {
                throw .archive(path, "index.json entry \(i) (\(ref)) has an invalid digest or size")
            }
            // A layout is read whole into memory, manifests only, so a
            // hostile one cannot make an import read or hold more than this.
            func readManifest(_ digest: Digest, _ what: String) throws(HaulError) -> [UInt8] {
                let blob = directory + "/blobs/sha256/" + digest.hex
                guard let raw = try? Self.readRegular(blob, limit: Manifest.maxBytes), Digest(hashing: raw) == digest
                else {
                    throw .archive(path, "\(what) of \(ref), \(digest), is missing or does not match its digest")
                }
                manifestBytes += raw.count
                guard manifestBytes <= Self.maxManifestBytes else {
                    throw .archive(
                        path, "holds more than \(Self.maxManifestBytes >> 20) MiB of manifests; import it in parts")
                }
                return raw
            }
            let raw = try readManifest(digest, "the manifest")
            var images: [Manifest] = []
            var stored = raw
            if ManifestList.isList(raw) {
                // A list (Ollama's manifest list): its children that came
                // along, each verified; those left out were not in the
                // exporting store either.
                let list = try ManifestList(bytes: raw)
                var present: [(child: ManifestList.Child, manifest: Manifest)] = []
                for child in list.children {
                    if let inline = child.inline {
                        present.append((child, inline))
                        continue
                    }
                    guard FileSystem.exists(directory + "/blobs/sha256/" + child.digest.hex) else { continue }
                    let bytes = try readManifest(
                        child.digest, "the \(child.runner.isEmpty ? "unnamed" : child.runner) child")
                    guard !ManifestList.isList(bytes) else {
                        throw .archive(
                            path, "the list of \(ref) has a list as a child (\(child.digest)); nothing was imported")
                    }
                    present.append((child, try Manifest(bytes: bytes)))
                }
                guard let chosen = list.select(isLocal: { c in present.contains { $0.child == c } }),
                    let runnable = present.first(where: { $0.child == chosen })
                else {
                    throw .archive(
                        path,
                        "the list of \(ref) has no child here that runs on this machine "
                            + "(runners: \(Runner.preferences.joined(separator: ", "))); nothing was imported")
                }
                switch storeLayout {
                case .v2, .auto:
                    // As pulled: the list, each child present, their layers.
                    images = present.map(\.manifest)
                    for (child, manifest) in present where child.inline == nil { children[child.digest] = manifest.raw }
                case .v1:
                    // A store an Ollama before 0.40 reads holds the child it
                    // runs, as a pull into it does.
                    images = [runnable.manifest]
                    stored = runnable.manifest.raw
                }
            } else {
                images = [try Manifest(bytes: raw)]
            }
            for image in images {
                for layer in try image.blobs where !blobs.contains(where: { $0.digest == layer.digest }) {
                    try stage(layer, of: ref)
                    blobs.append(layer)
                }
            }
            models.append((name, stored))
        }

        guard !models.isEmpty else { throw .archive(path, "index.json names no model") }
        try store.prepareDirectories()
        let pin = try StorePins(store: store).pin(blobs.map(\.digest) + children.keys.sorted { $0.hex < $1.hex })
        defer { pin.release() }
        var report = Report()
        for layer in blobs where !store.hasBlob(layer) {
            let staged = staging + "/blobs/sha256/" + layer.digest.hex
            try FileSystem.check(rename(staged, store.blobPath(layer.digest)), "rename", store.blobPath(layer.digest))
            report.blobs += 1
            report.bytes += layer.size
        }
        // A list's children are blobs of the store, as a pull leaves them,
        // before the list that names them.
        for (_, raw) in children.sorted(by: { $0.key.hex < $1.key.hex }) { _ = try store.writeManifestBlob(raw) }
        try FileSystem.syncDirectory(store.blobsDirectory)
        for (name, raw) in models {
            try store.writeManifest(raw: raw, for: name)
            report.models.append(name)
        }
        return report
    }

    /// The manifest bytes one import reads at most (every model's, and
    /// every child's of a list): far more than any real layout holds.
    static let maxManifestBytes = 64 << 20

    /// Opens a file of a layout directory for reading: a regular file, not
    /// a symbolic link (O_NOFOLLOW), a FIFO or a device (O_NONBLOCK keeps a
    /// FIFO from blocking the open; fstat then refuses it).
    static func openRegular(_ path: String) throws(HaulError) -> FileDescriptor {
        let fd: FileDescriptor
        do {
            fd = try FileDescriptor.open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK)
        } catch .io(_, _, ELOOP) {
            throw .archive(path, "is a symbolic link; a layout's files must be regular files")
        }
        guard (try fd.status().st_mode & S_IFMT) == S_IFREG else {
            throw .archive(path, "is not a regular file")
        }
        return fd
    }

    private static func readRegular(_ path: String, limit: Int) throws(HaulError) -> [UInt8] {
        try openRegular(path).readAll(limit: limit)
    }

    /// Copies `size` bytes of `source` into a new file at `target`.
    private static func copy(_ source: borrowing FileDescriptor, to target: String, size: Int64) throws(HaulError) {
        let to = try FileDescriptor.open(target, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW)
        if hl_reflink(to.rawValue, source.rawValue) == 0 { return }
        try TarArchive.copy(from: source, offset: 0, length: size, to: to)
        try to.sync()
    }

    /// Unpacks a tar of a layout into `directory` (made here).
    private static func extract(_ archive: String, into directory: String) throws(HaulError) {
        let fd = try FileDescriptor.open(archive, O_RDONLY)
        for entry in try TarArchive.entries(fd) {
            let target = directory + "/" + entry.name
            if entry.directory {
                try FileSystem.makeDirectories(target)
                continue
            }
            try FileSystem.makeDirectories(FileSystem.parent(of: target))
            let out = try FileDescriptor.open(target, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW)
            try TarArchive.copy(from: fd, offset: entry.offset, length: entry.size, to: out)
        }
    }
}
