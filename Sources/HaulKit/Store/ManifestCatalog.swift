import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A file at depth four of a manifest tree: a named manifest.
struct ManifestRef: Sendable, Equatable {
    /// The name as the store identifies it (nil when the file's path is
    /// not a valid name: a temporary file of a write in progress, say).
    let name: ModelName?
    let path: String
    let root: ManifestRoot
}

/// A named manifest that could not be used, and why.
public struct UnreadableManifest: Sendable, Equatable, CustomStringConvertible {
    /// The entry's path.
    public let path: String
    /// What is wrong with it.
    public let problem: String

    /// An entry at `path` that cannot be used because of `problem`.
    public init(path: String, problem: String) {
        self.path = path
        self.problem = problem
    }

    public var description: String { "\(path): \(problem)" }
}

extension ModelStore {
    /// Every non-directory at `<tree>/*/*/*/*` of both trees, `manifests-v2/`
    /// first (Ollama's `namedManifestRefs`, a glob: directories reached
    /// through links count). The entries themselves are taken as they are,
    /// links and dangling links included.
    func manifestRefs() -> [ManifestRef] { manifestRefs(in: nil) }

    /// The entries of one repository (`host` matched without case), or of
    /// all with nil: a request that names a repository reads only its
    /// directories, whatever else the store holds.
    func manifestRefs(in repository: (host: String, namespace: String, model: String)?) -> [ManifestRef] {
        var refs: [ManifestRef] = []
        for root in [ManifestRoot.v2, .legacy] {
            let top = directory(of: root)
            for host in FileSystem.listDirectory(top) where FileSystem.isDirectory(top + "/" + host) {
                if let repository, Self.identityHost(ofDirectory: host, in: root) != Self.identityHost(repository.host)
                {
                    continue
                }
                let h = top + "/" + host
                let namespaces = repository.map { [$0.namespace] } ?? FileSystem.listDirectory(h)
                for namespace in namespaces where FileSystem.isDirectory(h + "/" + namespace) {
                    let n = h + "/" + namespace
                    let models = repository.map { [$0.model] } ?? FileSystem.listDirectory(n)
                    for model in models where FileSystem.isDirectory(n + "/" + model) {
                        let m = n + "/" + model
                        for tag in FileSystem.listDirectory(m) where !FileSystem.isRealDirectory(m + "/" + tag) {
                            let name = Self.storedName([host, namespace, model, tag], in: root)?.storeIdentity
                            refs.append(ManifestRef(name: name, path: m + "/" + tag, root: root))
                        }
                    }
                }
            }
        }
        return refs
    }

    /// A host as store identities spell it, lower-cased: the public
    /// registry under one spelling.
    static func identityHost(_ host: String) -> String {
        let lower = host.lowercased()
        return ModelName.publicHosts.contains(lower) ? ModelName.defaultHost : lower
    }

    /// The identity host of a host directory of `root` (`%3A` is `:` in v2).
    static func identityHost(ofDirectory host: String, in root: ManifestRoot) -> String {
        identityHost(
            root == .v2
                ? host.replacingOccurrences(of: "%3A", with: ":").replacingOccurrences(of: "%3a", with: ":") : host)
    }

    /// The entry `name` resolves to, as Ollama resolves it: the v2 entry,
    /// unless it is a link that dangles; then the legacy file under the
    /// name's host, then under the public registry's other spelling.
    /// Nil when there is none. `name` is taken as spelled (see `existingName`).
    func resolve(_ name: ModelName) -> ManifestRef? {
        let v2 = v2Path(name)
        if FileSystem.lexists(v2) && !FileSystem.isDanglingLink(v2) {
            return ManifestRef(name: name.storeIdentity, path: v2, root: .v2)
        }
        for path in legacyPaths(name) where FileSystem.lexists(path) {
            return ManifestRef(name: name.storeIdentity, path: path, root: .legacy)
        }
        if FileSystem.lexists(v2) {
            // A dangling link and nothing to fall back to: it is found (and
            // reading it says what is wrong), so `haul rm` can remove it.
            return ManifestRef(name: name.storeIdentity, path: v2, root: .v2)
        }
        return nil
    }

    /// One entry per name, as listings show them: the entry each name
    /// resolves to.
    func namedRefs(in repository: (host: String, namespace: String, model: String)? = nil) -> [ManifestRef] {
        var seen = Set<ModelName>()
        var out: [ManifestRef] = []
        for ref in manifestRefs(in: repository) {
            guard let name = ref.name, seen.insert(name).inserted, let resolved = resolve(name) else { continue }
            out.append(resolved)
        }
        return out
    }

    /// The stored manifest `name` resolves to (matched without regard to
    /// case), read and checked. Nil when there is none.
    public func storedManifest(for name: ModelName) throws(HaulError) -> StoredManifest? {
        guard let stored = existingName(name), let ref = resolve(stored) else { return nil }
        return try StoredManifest.read(ref.path, name: stored, root: ref.root, store: self)
    }

    /// A list child's manifest, if it is in this store: an inline child's
    /// own, or the blob a reference names, read, hashed and decoded. A
    /// child blob that is there but wrong is an error naming it.
    public func childManifest(_ child: ManifestList.Child) throws(HaulError) -> Manifest? {
        if let inline = child.inline { return inline }
        let path = blobPath(child.digest)
        guard let fd = try FileDescriptor.openExisting(path, O_RDONLY | O_NOFOLLOW) else { return nil }
        let entry: ManifestCache.Entry
        do { entry = try StoredManifest.cached(fd, try fd.status(), path: path) } catch .storedManifest(_, let problem)
        {
            throw .storedManifest(path: path, problem: problem)
        } catch {
            throw .storedManifest(path: path, problem: "cannot be read as a manifest (\(error))")
        }
        guard entry.digest == child.digest else {
            throw .storedManifest(path: path, problem: "does not hash to its name")
        }
        switch entry.content {
        case .success(.image(let manifest)): return manifest
        case .success(.list):
            throw .storedManifest(path: path, problem: "is a manifest list inside a manifest list")
        case .failure where ManifestList.isList(entry.raw):
            throw .storedManifest(path: path, problem: "is a manifest list inside a manifest list")
        case .failure(let error):
            throw .storedManifest(path: path, problem: "is not a manifest Haul can read (\(error))")
        }
    }

    /// The manifest a stored entry runs as: itself, or for a list the child
    /// Ollama would pick among those present (`runner` alone, when given).
    public func runnable(_ stored: StoredManifest, runner: String? = nil) throws(HaulError) -> (
        manifest: Manifest, child: ManifestList.Child?
    ) {
        switch stored.content {
        case .image(let manifest):
            return (manifest, nil)
        case .list(let list):
            var failure: HaulError?
            let preferences = runner.map { [$0] } ?? Runner.preferences
            let chosen = list.select(preferences: preferences) { child in
                do throws(HaulError) { return try childManifest(child) != nil } catch {
                    failure = failure ?? error
                    return false
                }
            }
            guard let chosen, let manifest = try childManifest(chosen) else {
                if let failure { throw failure }
                throw .noCompatibleManifest(runners: preferences)
            }
            return (manifest, chosen)
        }
    }

    /// The children of the list `name` resolves to that are in this store,
    /// in the list's order; empty for a plain manifest or an unreadable entry.
    public func localChildren(of name: ModelName) -> [ManifestList.Child] {
        guard let stored = try? storedManifest(for: name), case .list(let list) = stored.content else { return [] }
        return list.children.filter { (try? childManifest($0)) != nil }
    }

    /// Every stored model, as Ollama's `/api/tags` enumerates them: a row
    /// per plain manifest, and a row per child present of each list; and
    /// every entry that could not be read.
    func catalog(in repository: (host: String, namespace: String, model: String)? = nil) -> (
        models: [LocalModel], unreadable: [UnreadableManifest]
    ) {
        var models: [LocalModel] = []
        var unreadable: [UnreadableManifest] = []
        for ref in namedRefs(in: repository) {
            guard let name = ref.name, !name.isShadowTag else { continue }
            do {
                let stored = try StoredManifest.read(ref.path, name: name, root: ref.root, store: self)
                switch stored.content {
                case .image(let manifest):
                    models.append(LocalModel(stored: stored, manifest: manifest, child: nil))
                case .list(let list):
                    var rows = 0
                    for child in list.children {
                        do {
                            guard let manifest = try childManifest(child) else { continue }
                            models.append(LocalModel(stored: stored, manifest: manifest, child: child))
                            rows += 1
                        } catch {
                            unreadable.append(UnreadableManifest(path: ref.path, problem: error.description))
                        }
                    }
                    if rows == 0 && list.children.isEmpty {
                        unreadable.append(
                            UnreadableManifest(path: ref.path, problem: "is a manifest list with no children"))
                    }
                }
            } catch .storedManifest(let path, let problem) {
                unreadable.append(UnreadableManifest(path: path, problem: problem))
            } catch {
                unreadable.append(UnreadableManifest(path: ref.path, problem: error.description))
            }
        }
        return (models.sorted { $0.modified > $1.modified }, unreadable)
    }

    /// The stored models of one repository, as `list()` shows them, read
    /// from that repository's directories alone (`host` matched without
    /// case, as stored hosts are spelled).
    public func list(host: String, namespace: String, model: String) -> [LocalModel] {
        // Parts that are not a name's (`..`, `/`) name no directory here.
        guard (try? ModelName(host: host, namespace: namespace, model: model, tag: "latest")) != nil else { return [] }
        return catalog(in: (host, namespace, model)).models
    }

    /// Every named manifest that could not be read, in either tree.
    public func unreadableManifests() -> [UnreadableManifest] { catalog().unreadable }
}

extension LocalModel {
    init(stored: StoredManifest, manifest: Manifest, child: ManifestList.Child?) {
        let size = ((try? manifest.blobs) ?? []).reduce(Int64(0)) { $0 + $1.size }
        let runner = manifest.runner.isEmpty ? (child?.runner ?? "") : manifest.runner
        var manifestBlobs: [Layer] = []
        if let linked = stored.linkedBlob {
            manifestBlobs.append(Layer(mediaType: stored.mediaType, digest: linked, size: Int64(stored.raw.count)))
        }
        if let child, child.inline == nil {
            manifestBlobs.append(
                Layer(mediaType: child.mediaType, digest: child.digest, size: Int64(manifest.raw.count)))
        }
        self.init(
            name: stored.name, id: child?.digest ?? stored.digest, size: size, modified: stored.modified,
            manifest: manifest, runner: runner, tagDigest: stored.digest, manifestBlobs: manifestBlobs)
    }
}
