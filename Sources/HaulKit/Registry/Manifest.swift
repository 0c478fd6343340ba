import Foundation

/// One entry of a manifest's `layers` (or its `config`).
public struct Layer: Sendable, Hashable {
    /// What the blob is (`application/vnd.ollama.image.model`, `….template`, …).
    public let mediaType: String
    /// The blob's SHA-256.
    public let digest: Digest
    /// The blob's size in bytes.
    public let size: Int64
}

/// A registry manifest (Docker v2 schema 2 or OCI image manifest), decoded
/// strictly enough that every digest and size can be trusted as a path and a
/// byte count, and kept as the exact bytes the registry sent: those bytes are
/// what Ollama stores, and their SHA-256 is the model's ID.
public struct Manifest: Sendable {
    /// The manifest types Haul accepts (and asks for in `Accept`).
    public static let mediaTypes = [
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.manifest.v1+json"
    ]
    /// Larger manifests are refused before decoding; real ones are a few KiB.
    public static let maxBytes = 4 << 20
    /// Manifests with more layers are refused.
    public static let maxLayers = 4096
    /// 1 TiB per blob is far beyond any model file and keeps arithmetic on
    /// sizes safely inside Int64.
    public static let maxBlobSize: Int64 = 1 << 40

    /// The bytes as the registry sent them: what is stored, and what the digest is of.
    public let raw: [UInt8]
    /// The manifest's own media type (Docker v2 when it names none).
    public let mediaType: String
    /// The config blob.
    public let config: Layer
    /// The layers, in manifest order.
    public let layers: [Layer]
    /// The runner the manifest declares (lower-cased; "" when it names
    /// none). Ollama writes `runner` and `format` into manifests it makes
    /// and into list children (`WriteManifestWithMetadata`).
    public let runner: String

    /// Decodes and checks a manifest (schema 2, at most `maxLayers` layers, valid digests and sizes).
    public init(bytes: [UInt8]) throws(HaulError) {
        guard bytes.count <= Self.maxBytes else {
            throw .manifestInvalid("larger than \(Self.maxBytes) bytes")
        }
        let wire: Wire
        do {
            wire = try JSONDecoder().decode(Wire.self, from: Data(bytes))
        } catch let error as DecodingError {
            throw .manifestInvalid(Self.explain(error))
        } catch {
            throw .manifestInvalid("not JSON")
        }
        guard wire.schemaVersion == 2 else {
            throw .manifestInvalid("schemaVersion \(wire.schemaVersion.map(String.init) ?? "missing"), want 2")
        }
        // An empty media type is Docker's, as for a manifest that names none
        // (Ollama writes `"mediaType":""` for an untyped inline list child).
        if let mediaType = wire.mediaType, !mediaType.isEmpty, !Self.mediaTypes.contains(mediaType) {
            throw .manifestInvalid("unsupported mediaType \(HaulError.quoted(mediaType))")
        }
        guard wire.layers.count <= Self.maxLayers else {
            throw .manifestInvalid("\(wire.layers.count) layers, at most \(Self.maxLayers) allowed")
        }
        self.raw = bytes
        self.mediaType = wire.mediaType.flatMap { $0.isEmpty ? nil : $0 } ?? Self.mediaTypes[0]
        self.runner = Runner.canonical(wire.runner ?? "")
        self.config = try Self.layer(wire.config, what: "config")
        var layers: [Layer] = []
        for (i, l) in wire.layers.enumerated() {
            layers.append(try Self.layer(l, what: "layer \(i)"))
        }
        self.layers = layers
    }

    /// The blobs to fetch: every distinct digest, layers first in manifest
    /// order, then the config (Ollama's order). A digest listed twice with
    /// different sizes is a corrupt manifest.
    public var blobs: [Layer] {
        get throws(HaulError) {
            var seen: [Digest: Int64] = [:]
            var out: [Layer] = []
            for layer in layers + [config] {
                if let size = seen[layer.digest] {
                    guard size == layer.size else {
                        throw .manifestInvalid("\(layer.digest) listed with sizes \(size) and \(layer.size)")
                    }
                    continue
                }
                seen[layer.digest] = layer.size
                out.append(layer)
            }
            return out
        }
    }

    /// Every blob the manifest points at, config included: what keeps a blob
    /// from being pruned.
    public var referencedDigests: [Digest] { layers.map(\.digest) + [config.digest] }

    /// Bytes of all distinct blobs.
    public var totalSize: Int64 {
        ((try? blobs) ?? []).reduce(0) { $0 + $1.size }
    }

    /// The model's ID: SHA-256 of the raw manifest bytes.
    public var digest: Digest { Digest(bytes: SHA256.hash(raw)) }

    private struct Wire: Decodable {
        let schemaVersion: Int?
        let mediaType: String?
        let config: WireLayer
        let layers: [WireLayer]
        let runner: String?
    }

    private struct WireLayer: Decodable {
        let mediaType: String?
        let digest: String
        let size: Int64
    }

    private static func layer(_ w: WireLayer, what: String) throws(HaulError) -> Layer {
        let digest: Digest
        do { digest = try Digest(parsing: w.digest) } catch {
            throw .manifestInvalid("\(what): invalid digest \(HaulError.quoted(w.digest))")
        }
        guard w.size >= 0, w.size <= Self.maxBlobSize else {
            throw .manifestInvalid("\(what): size \(w.size) out of range")
        }
        return Layer(mediaType: w.mediaType ?? "", digest: digest, size: w.size)
    }

    private static func explain(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context) -> String {
            let p = context.codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
            return p.isEmpty ? "" : " at \(p)"
        }
        switch error {
        case .keyNotFound(let key, let context): return "missing \(key.stringValue)\(path(context))"
        case .typeMismatch(_, let context): return "wrong type\(path(context))"
        case .valueNotFound(_, let context): return "null value\(path(context))"
        case .dataCorrupted(let context): return "malformed JSON\(path(context))"
        @unknown default: return "malformed JSON"
        }
    }
}
