/// Which of Ollama's two manifest trees a named manifest is in.
public enum ManifestRoot: Sendable, Equatable {
    /// `manifests-v2/<host>/<namespace>/<model>/<tag>`: Ollama ≥ 0.40, an
    /// entry that links to (or copies) the manifest blob in `blobs/`.
    case v2
    /// `manifests/<host>/<namespace>/<model>/<tag>`: the manifest's bytes.
    case legacy
}

extension ModelName {
    /// The two spellings of Ollama's public registry. A name under either
    /// (in any case) is the same model (Ollama's `manifest/paths.go`
    /// `isDefaultPublicHost`).
    static let publicHosts = ["registry.ollama.ai", "ollama.com"]
    /// The host Ollama writes public names under in `manifests-v2/` (`canonicalV2Name`).
    static let v2PublicHost = "ollama.com"

    /// Whether the host is the public registry under either spelling.
    var isPublicHost: Bool { Self.publicHosts.contains(host.lowercased()) }

    /// The name as the store identifies a model: the public registry under
    /// one spelling, `registry.ollama.ai` (Ollama's `normalizeLogicalName`);
    /// every other part as written, and no scheme.
    public var storeIdentity: ModelName {
        let host = isPublicHost ? Self.defaultHost : self.host
        if scheme == nil && host == self.host { return self }
        return (try? ModelName(host: host, namespace: namespace, model: model, tag: tag)) ?? self
    }

    /// A name of Ollama's converted-model bookkeeping,
    /// `registry.ollama.ai/library/llamacpp:<64 hex>`: a root for garbage
    /// collection, never shown as a model (`compatmigrate`).
    var isShadowTag: Bool {
        isPublicHost && namespace == Self.defaultNamespace && model == "llamacpp"
            && tag.utf8.count == 64 && tag.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }
    }
}

extension ModelStore {
    /// `manifests-v2/`: Ollama ≥ 0.40's named manifests, each a link to a
    /// manifest blob.
    public var manifestsV2Directory: String { root + "/manifests-v2" }

    /// The directory of one manifest tree.
    func directory(of root: ManifestRoot) -> String {
        root == .v2 ? manifestsV2Directory : manifestsDirectory
    }

    /// Where `name`'s v2 entry is (Ollama's `V2PathForName`): the public
    /// registry as `ollama.com`, `:` in the host as `%3A`.
    public func v2Path(_ name: ModelName) -> String {
        let host = name.isPublicHost ? ModelName.v2PublicHost : name.host
        let encoded = host.replacingOccurrences(of: ":", with: "%3A")
        return [manifestsV2Directory, encoded, name.namespace, name.model, name.tag].joined(separator: "/")
    }

    /// Where `name`'s legacy file may be: under the host as written, then,
    /// for the public registry, under its other spelling (Ollama's
    /// `legacyNameCandidates`).
    public func legacyPaths(_ name: ModelName) -> [String] {
        var hosts = [name.host]
        if name.isPublicHost {
            hosts.append(
                name.host.lowercased() == ModelName.defaultHost ? ModelName.v2PublicHost : ModelName.defaultHost)
        }
        return hosts.map { [manifestsDirectory, $0, name.namespace, name.model, name.tag].joined(separator: "/") }
    }

    /// The name a file at `components` (host, namespace, model, tag) below
    /// a manifest tree stands for, or nil when it is not a valid name
    /// (Ollama's `parseStoredManifestFilepath`: `%3A` and `%3a` read as
    /// `:` in v2 hosts).
    static func storedName(_ components: [String], in root: ManifestRoot) -> ModelName? {
        guard components.count == 4 else { return nil }
        var host = components[0]
        if root == .v2 {
            host = host.replacingOccurrences(of: "%3A", with: ":").replacingOccurrences(of: "%3a", with: ":")
        }
        return try? ModelName(host: host, namespace: components[1], model: components[2], tag: components[3])
    }
}
