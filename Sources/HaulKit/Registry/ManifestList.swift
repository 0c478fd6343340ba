import Foundation

/// An Ollama manifest list (`application/vnd.ollama.manifest.list.v2+json`):
/// one tag, one child manifest per runner (`llamacpp`, `ggml`, `mlx`).
/// Read as Ollama's `manifest/manifest.go` reads it (`parseManifest`,
/// `Manifest.UnmarshalJSON`) and kept as the exact bytes received, whose
/// SHA-256 is the tag's identity.
///
/// A child is either a reference (media type, digest, runner, format: the
/// child manifest is a blob of its own) or an inline manifest, whose
/// identity is the SHA-256 of Ollama's re-encoding of it
/// (`ChildManifestDigest`; see `GoManifestJSON`).
public struct ManifestList: Sendable {
    /// The list's media type, as Ollama's `MediaTypeManifestList` names it.
    public static let mediaType = "application/vnd.ollama.manifest.list.v2+json"
    /// Larger lists are refused, as larger manifests are.
    public static let maxChildren = 256

    /// One entry of `manifests`.
    public struct Child: Sendable, Equatable {
        /// The child's media type ("" when it names none).
        public let mediaType: String
        /// The child manifest's digest: the referenced blob, or the inline
        /// manifest's canonical encoding.
        public let digest: Digest
        /// The runner the child is for, lower-cased ("" when unnamed: never selected).
        public let runner: String
        /// The weights' format (`gguf`, `safetensors`), lower-cased.
        public let format: String
        /// The manifest itself, for an inline child (nil for a reference).
        public let inline: Manifest?

        /// Ollama selects only Docker v2 children (or untyped ones)
        /// (`selectManifestReferenceWithPreferences`).
        public var isSelectable: Bool {
            !runner.isEmpty && (mediaType.isEmpty || mediaType == Manifest.mediaTypes[0])
        }

        public static func == (a: Child, b: Child) -> Bool { a.key == b.key }

        /// What makes two entries the same child.
        struct Key: Hashable {
            let mediaType: String
            let digest: Digest
            let runner: String
            let format: String
        }

        var key: Key { Key(mediaType: mediaType, digest: digest, runner: runner, format: format) }
    }

    /// The bytes as received or stored: what the tag's digest is of.
    public let raw: [UInt8]
    /// The distinct children, in the list's order (the order selection
    /// honours); a child listed again is kept once, where it first appears.
    public let children: [Child]

    /// The list's digest: SHA-256 of its bytes.
    public var digest: Digest { Digest(hashing: raw) }

    /// Whether `bytes` is a list: decided by the body's `mediaType`, as
    /// Ollama decides it, never by a `Content-Type` header.
    public static func isList(_ bytes: [UInt8]) -> Bool {
        struct Probe: Decodable { let mediaType: String? }
        return (try? JSONDecoder().decode(Probe.self, from: Data(bytes)))?.mediaType == mediaType
    }

    /// Decodes and checks a list: at most `maxChildren` children, each a
    /// valid reference or inline manifest, none of them a list.
    public init(bytes: [UInt8]) throws(HaulError) {
        guard bytes.count <= Manifest.maxBytes else {
            throw .manifestInvalid("manifest list larger than \(Manifest.maxBytes) bytes")
        }
        let wire: Wire
        do {
            wire = try JSONDecoder().decode(Wire.self, from: Data(bytes))
        } catch {
            throw .manifestInvalid("manifest list: malformed JSON")
        }
        guard wire.mediaType == Self.mediaType else {
            throw .manifestInvalid("not a manifest list")
        }
        let entries = wire.manifests ?? []
        guard entries.count <= Self.maxChildren else {
            throw .manifestInvalid("manifest list with \(entries.count) children, at most \(Self.maxChildren) allowed")
        }
        // One entry per distinct child, the first kept: a list naming one
        // child 256 times would otherwise make every listing read, hash
        // and hold it 256 times. Selection is unchanged (Ollama's
        // `selectManifestWithPreferences` takes the first child of each
        // runner), and the bytes, so the tag's digest, are kept as sent.
        var children: [Child] = []
        var seen = Set<Child.Key>()
        for (index, entry) in entries.enumerated() {
            let child = try Self.child(entry, index: index)
            if seen.insert(child.key).inserted { children.append(child) }
        }
        self.raw = bytes
        self.children = children
    }

    /// The child Ollama runs by default on this platform, among those
    /// `isLocal` says are present: per runner in `preferences`, the first
    /// selectable child of that runner, taken only if local (Ollama's
    /// `selectManifestWithPreferences` moves to the next runner, not the
    /// next child, when it is not).
    public func select(preferences: [String] = Runner.preferences, isLocal: (Child) -> Bool) -> Child? {
        for runner in preferences {
            guard let child = children.first(where: { $0.isSelectable && $0.runner == runner }) else { continue }
            if isLocal(child) { return child }
        }
        return nil
    }

    private struct Wire: Decodable {
        let mediaType: String?
        let manifests: [WireChild]?
    }

    /// A child as written: a reference has a digest and no config or
    /// layers (Ollama's `isReference`); anything else is inline.
    private struct WireChild: Decodable {
        let schemaVersion: Int?
        let mediaType: String?
        let digest: String?
        let config: GoManifestJSON.Layer?
        let layers: [GoManifestJSON.Layer]?
        let runner: String?
        let format: String?
    }

    private static func child(_ w: WireChild, index: Int) throws(HaulError) -> Child {
        let mediaType = w.mediaType ?? ""
        guard mediaType != Self.mediaType else {
            throw .manifestInvalid("manifest list child \(index): nested manifest lists are not supported")
        }
        let runner = Runner.canonical(w.runner ?? "")
        let format = (w.format ?? "").trimmingCharacters(in: .whitespaces).lowercased()
        let isReference = (w.digest ?? "") != "" && (w.config?.digest ?? "") == "" && (w.layers ?? []).isEmpty
        if isReference, let text = w.digest {
            // Ollama accepts `sha256:` or `sha256-` and hex in either case.
            guard let digest = Digest(ollamaSpelling: text) else {
                throw .manifestInvalid("manifest list child \(index): invalid digest \(HaulError.quoted(text))")
            }
            return Child(mediaType: mediaType, digest: digest, runner: runner, format: format, inline: nil)
        }
        let canonical = GoManifestJSON.inlineChild(
            schemaVersion: w.schemaVersion ?? 0, mediaType: mediaType,
            config: w.config, layers: w.layers, runner: w.runner ?? "",
            format: w.format ?? "")
        // An inline child Haul cannot use as a manifest (no config digest,
        // say) still has its identity; it is simply never selected.
        let manifest = try? Manifest(bytes: canonical)
        return Child(
            mediaType: mediaType, digest: Digest(hashing: canonical), runner: manifest == nil ? "" : runner,
            format: format, inline: manifest)
    }
}

/// Ollama's runner names (`manifest/manifest.go`) and the aliases its API
/// accepts (`server/routes.go` `normalizeRunner`).
public enum Runner {
    /// The order Ollama prefers runners in on this platform
    /// (`runnerPreferences`): MLX first on Apple silicon, llama.cpp first
    /// everywhere else.
    public static var preferences: [String] {
        #if os(macOS) && arch(arm64)
        return ["mlx", "llamacpp", "ggml"]
        #else
        return ["llamacpp", "ggml", "mlx"]
        #endif
    }

    /// Lower-cased and trimmed, as Ollama compares runners (`canonicalRunner`).
    public static func canonical(_ runner: String) -> String {
        runner.trimmingCharacters(in: .whitespaces).lowercased()
    }

    /// The runner a request names, by Ollama's aliases; nil for an unknown one.
    public static func normalize(_ requested: String) -> String? {
        switch canonical(requested) {
        case "mlx", "mlxrunner": return "mlx"
        case "ggml": return "ggml"
        case "llamacpp", "llama.cpp", "llama-cpp", "llama_cpp": return "llamacpp"
        default: return nil
        }
    }

    /// The runner Ollama assumes for a manifest that names none, from its
    /// config's `model_format` (`MetadataForConfig`): GGUF runs on `ggml`,
    /// safetensors on `mlx`.
    public static func forModelFormat(_ format: String) -> String {
        switch format.lowercased() {
        case "gguf", "ggml": return "ggml"
        case "safetensors": return "mlx"
        default: return ""
        }
    }
}

extension Digest {
    /// A digest as Ollama's store accepts one (`sha256:` or `sha256-`, hex
    /// in either case), normalized to lower case. Nil for anything else.
    init?(ollamaSpelling text: String) {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard trimmed.utf8.count == 71, trimmed.hasPrefix("sha256:") || trimmed.hasPrefix("sha256-") else { return nil }
        guard let digest = try? Digest(parsing: "sha256:" + trimmed.dropFirst(7).lowercased()) else { return nil }
        self = digest
    }
}
