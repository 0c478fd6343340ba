import Foundation

/// What `ollama list` and `ollama show` report about a model, read from its
/// config blob (Ollama's `ConfigV2`).
public struct ModelDetails: Sendable, Equatable, Codable {
    /// The model this one was made from (`FROM` of a derived model).
    public var parentModel = ""
    /// The weights' format (`gguf`).
    public var format = ""
    /// The architecture family (`llama`, `qwen2`).
    public var family = ""
    /// Every family, for models that combine several.
    public var families: [String]?
    /// The parameter count as Ollama writes it (`8.0B`).
    public var parameterSize = ""
    /// The weights' quantization (`Q4_K_M`).
    public var quantizationLevel = ""
    /// The runner a listing row is for (`/api/tags` of Ollama ≥ 0.40,
    /// `details.runner`); nil where Ollama leaves it out.
    public var runner: String?
    /// The config's own `capabilities` (set for models that are not GGUF).
    var capabilities: [String] = []

    enum CodingKeys: String, CodingKey {  // `capabilities` is not a detail on the wire
        case parentModel = "parent_model"
        case format, family, families
        case parameterSize = "parameter_size"
        case quantizationLevel = "quantization_level"
        case runner
    }

    /// Empty details (a model whose config cannot be read).
    public init() {}

    /// The config blob's fields, by Ollama's names. A config that is
    /// missing or not JSON gives empty details, as Ollama's list does.
    init(config bytes: [UInt8]) {
        struct Config: Decodable {
            var model_format: String?
            var model_family: String?
            var model_families: [String]?
            var model_type: String?
            var file_type: String?
            var capabilities: [String]?
        }
        guard let config = try? JSONDecoder().decode(Config.self, from: Data(bytes)) else { return }
        format = config.model_format ?? ""
        family = config.model_family ?? ""
        families = config.model_families
        parameterSize = config.model_type ?? ""
        quantizationLevel = config.file_type ?? ""
        capabilities = config.capabilities ?? []
    }
}

/// The text layers of a stored model: what `ollama show` prints.
public struct ModelContents: Sendable {
    /// The media type of a model's weights layer.
    public static let modelMediaType = "application/vnd.ollama.image.model"
    static let projectorMediaType = "application/vnd.ollama.image.projector"
    static let templateMediaType = "application/vnd.ollama.image.template"
    /// Text layers are prompts and licences; a bigger one is not read.
    static let textLimit = 4 << 20
    /// All text layers of one model together: a manifest may list up to
    /// 4,096 layers, and each distinct one is read once, so this bounds
    /// what one `/api/show` holds whatever the model lists.
    static let textTotalLimit = 16 << 20

    /// The model.
    public let name: ModelName
    /// What its config blob says.
    public let details: ModelDetails
    /// The prompt template layer's text; empty when there is none.
    public let template: String
    /// The system prompt layer's text; empty when there is none.
    public let system: String
    /// Each licence layer's text.
    public let licenses: [String]
    /// `params` layer entries, each key with its values, keys sorted.
    public let parameters: [(key: String, values: [String])]
    /// Path of the weights blob, for the Modelfile's `FROM`.
    public let modelPath: String?
    /// The model has a projector layer (vision).
    public let hasProjector: Bool
    /// Text layers past `textTotalLimit`, not read.
    public let unreadTextLayers: [Layer]
    /// The template's layer, which `ModelFacts` keeps the scan of.
    let templateLayer: Layer?
    let store: ModelStore

    /// Reads the text layers of `model`. A blob listed several times is read
    /// once (a licence listed 4,000 times is one licence), and the text
    /// layers together are read up to `textTotalLimit`; licences past it are
    /// named, not read.
    init(model: LocalModel, store: ModelStore) throws(HaulError) {
        name = model.name
        self.store = store
        details = store.details(ofConfig: model.manifest.config)
        var template = ""
        var system = ""
        var licenses: [String] = []
        var parameters: [(String, [String])] = []
        var modelPath: String?
        var hasProjector = false
        var templateLayer: Layer?
        var seen: Set<Digest> = []
        var textBytes: Int64 = 0
        var unread: [Layer] = []
        for layer in model.manifest.layers where seen.insert(layer.digest).inserted {
            let path = store.blobPath(layer.digest)
            let isText =
                layer.mediaType.hasPrefix("application/vnd.ollama.image.")
                && ["template", "system", "license", "params"].contains(layer.mediaType.dropFirst(29))
            if isText {
                guard textBytes + min(layer.size, Int64(Self.textLimit)) <= Int64(Self.textTotalLimit) else {
                    unread.append(layer)
                    continue
                }
                textBytes += min(layer.size, Int64(Self.textLimit))
            }
            switch layer.mediaType {
            case Self.modelMediaType: modelPath = path
            case Self.projectorMediaType: hasProjector = true
            case Self.templateMediaType:
                template = try Self.text(path)
                templateLayer = layer
            case "application/vnd.ollama.image.system": system = try Self.text(path)
            case "application/vnd.ollama.image.license": licenses.append(try Self.text(path))
            case "application/vnd.ollama.image.params": parameters = try Self.parameters(path)
            default: break
            }
        }
        self.unreadTextLayers = unread
        (self.template, self.system, self.licenses) = (template, system, licenses)
        (self.parameters, self.modelPath, self.hasProjector) = (parameters, modelPath, hasProjector)
        self.templateLayer = templateLayer
    }

    /// The weights' metadata, when they are GGUF (nil for another format,
    /// or no weights). `keepArraysUpTo` as `GGUFMetadata.read` takes it.
    public func metadata(keepArraysUpTo: Int?) throws(GGUFError) -> GGUFMetadata? {
        guard let modelPath else { return nil }
        return try GGUFMetadata.read(path: modelPath, keepArraysUpTo: keepArraysUpTo)
    }

    /// What the model can do (see `ModelCapabilities`), from `metadata`.
    public func capabilities(metadata: GGUFMetadata?) -> [String] {
        ModelCapabilities.derive(
            config: details.capabilities, gguf: metadata, hasProjector: hasProjector,
            template: template, family: details.family)
    }

    /// Says which text layers were not read, when some were not.
    public var unreadTextNote: String? {
        guard !unreadTextLayers.isEmpty else { return nil }
        let names = unreadTextLayers.prefix(8).map(\.digest.short).joined(separator: ", ")
        return
            "\(unreadTextLayers.count) more text layers not shown (\(names)\(unreadTextLayers.count > 8 ? ", …" : "")): "
            + "a model's text layers are read up to \(Self.textTotalLimit >> 20) MiB"
    }

    static func text(_ path: String) throws(HaulError) -> String {
        String(decoding: try FileSystem.readFile(path, limit: textLimit), as: UTF8.self)
    }

    /// The params layer is a JSON object of scalars or arrays of scalars;
    /// values are shown the way Go's `%#v` shows them (strings quoted).
    private static func parameters(_ path: String) throws(HaulError) -> [(String, [String])] {
        let bytes = try FileSystem.readFile(path, limit: textLimit)
        guard let object = try? JSONDecoder().decode([String: Parameter].self, from: Data(bytes)) else { return [] }
        return object.keys.sorted().map { key in
            switch object[key]! {
            case .list(let values): return (key, values.map(\.goSyntax))
            case let scalar: return (key, [scalar.goSyntax])
            }
        }
    }

    private enum Parameter: Decodable {
        case bool(Bool)
        case number(Double)
        case string(String)
        case list([Parameter])
        case other

        init(from decoder: any Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let b = try? c.decode(Bool.self) {
                self = .bool(b)
            } else if let n = try? c.decode(Double.self) {
                self = .number(n)
            } else if let s = try? c.decode(String.self) {
                self = .string(s)
            } else if let l = try? c.decode([Parameter].self) {
                self = .list(l)
            } else {
                self = .other
            }
        }

        var goSyntax: String {
            switch self {
            case .bool(let b): return b ? "true" : "false"
            case .number(let d): return d == d.rounded() && abs(d) < 1e15 ? String(Int64(d)) : String(d)
            case .string(let s): return s.goQuoted
            case .list(let l): return "[" + l.map(\.goSyntax).joined(separator: " ") + "]"
            case .other: return "<nil>"
            }
        }
    }
}

extension ModelStore {
    /// Details from the manifest's config blob.
    public func details(of manifest: Manifest) -> ModelDetails { details(ofConfig: manifest.config) }

    func details(ofConfig config: Layer) -> ModelDetails {
        guard let bytes = try? FileSystem.readFile(blobPath(config.digest), limit: ModelContents.textLimit) else {
            return ModelDetails()
        }
        return ModelDetails(config: bytes)
    }

    /// The stored model called `name`, or `modelNotFound`.
    /// For a manifest list, the child Ollama would run.
    /// With `runner`, that child only (a plain manifest that declares
    /// another runner is `noCompatibleManifest`).
    public func model(_ name: ModelName, runner: String? = nil) throws(HaulError) -> LocalModel {
        guard let stored = try storedManifest(for: name) else { throw .modelNotFound(name.displayShortest) }
        let (manifest, child) = try runnable(stored, runner: runner)
        if let runner, child == nil, !manifest.runner.isEmpty, manifest.runner != runner {
            throw .noCompatibleManifest(runners: [runner])
        }
        return LocalModel(stored: stored, manifest: manifest, child: child)
    }

    /// What `ollama show` reports for `name`.
    public func contents(of name: ModelName) throws(HaulError) -> ModelContents {
        try contents(of: model(name))
    }

    /// What `ollama show` reports for a model already found.
    public func contents(of model: LocalModel) throws(HaulError) -> ModelContents {
        try ModelContents(model: model, store: self)
    }
}
