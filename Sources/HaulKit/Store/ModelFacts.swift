import Synchronization

/// What listing and showing models derive from their blobs at a cost (the
/// config's details, the template's scan, the GGUF keys capabilities
/// depend on), computed once per blob and kept: a blob's digest names its
/// bytes, so a fact about it never goes stale. `/api/tags`, which clients
/// poll constantly, then costs one manifest read per model however large
/// or hostile the models' files are.
///
/// At most `capacity` blobs are remembered; past that the memory starts
/// afresh (each entry is a few hundred bytes).
public final class ModelFacts: Sendable {
    /// What `/api/tags` reports of a model beyond its manifest.
    public struct Summary: Sendable, Equatable {
        /// What the config blob says.
        public let details: ModelDetails
        /// As `/api/show` derives them; nil when the weights cannot be read.
        public let capabilities: [String]?
    }

    private enum Fact: Sendable {
        case details(ModelDetails)
        case template(ModelCapabilities.TemplateFacts)
        /// nil: the weights are not GGUF.
        case gguf(ModelCapabilities.GGUFFacts?)
        case unreadable
    }

    private let capacity: Int
    /// What was asked of a blob: one blob may be a config in one model and
    /// a template in another (identical bytes), and each question has its
    /// own answer.
    private enum Question: Hashable, Sendable { case details, template, gguf }

    private struct Key: Hashable, Sendable {
        let digest: Digest
        let question: Question
    }

    private let facts = Mutex<[Key: Fact]>([:])

    /// A cache of at most `capacity` blobs' facts.
    public init(capacity: Int = 4096) { self.capacity = capacity }

    /// The details and capabilities of a stored model, reading each of its
    /// blobs at most once per `ModelFacts`. Text layers other than the
    /// template are not read.
    public func summary(of model: LocalModel, in store: ModelStore) -> Summary {
        let manifest = model.manifest
        let details = self.details(of: manifest.config, in: store)
        var template = ModelCapabilities.TemplateFacts()
        var gguf: ModelCapabilities.GGUFFacts?
        var hasProjector = false
        var readable = true
        for layer in manifest.layers {
            switch layer.mediaType {
            case ModelContents.modelMediaType:
                switch fact(layer.digest, .gguf, in: store, compute: { Self.gguf(store.blobPath(layer.digest)) }) {
                case .gguf(let facts): gguf = facts
                default: readable = false
                }
            case ModelContents.projectorMediaType:
                hasProjector = true
            case ModelContents.templateMediaType:
                template = templateFacts(of: layer, in: store)
            default:
                break
            }
        }
        let capabilities = ModelCapabilities.derive(
            config: details.capabilities, gguf: gguf, hasProjector: hasProjector,
            template: template, family: details.family)
        return Summary(details: details, capabilities: readable ? capabilities : nil)
    }

    /// Every stored model with its summary, newest first: `/api/tags`. The
    /// work runs off Swift's cooperative pool, and stops (`cancelled`) when
    /// the calling task is cancelled.
    public func listing(of store: ModelStore) async throws(HaulError) -> [(model: LocalModel, summary: Summary)] {
        try await BlockingIO.runCancellable { [self] (flag) throws(HaulError) in
            var out: [(model: LocalModel, summary: Summary)] = []
            for model in store.list() {
                try flag.check()
                out.append((model, summary(of: model, in: store)))
            }
            return out
        }
    }

    /// Everything `/api/show` reports of a stored model (for a manifest
    /// list, the child for `runner`, or the one Ollama would run): its text layers,
    /// its weights' metadata (arrays kept up to `keepArraysUpTo` elements)
    /// and its capabilities, read off Swift's cooperative pool.
    /// `render` turns them into the response there too: a show can be
    /// megabytes of text (a 4 MiB template is in the template and the
    /// Modelfile), which must not be encoded on the pool either.
    public func show<T: Sendable>(
        _ name: ModelName, in store: ModelStore, runner: String? = nil, keepArraysUpTo: Int?,
        render:
            @escaping @Sendable (
                _ model: LocalModel, _ contents: ModelContents, _ metadata: GGUFMetadata?,
                _ capabilities: [String]
            ) throws -> T
    ) async throws -> T {
        let outcome = try await BlockingIO.runCancellable { [self] (flag) throws(HaulError) -> Result<T, any Error> in
            let model = try store.model(name, runner: runner)
            try flag.check()
            let contents = try store.contents(of: model)
            try flag.check()
            return Result {
                let metadata = try contents.metadata(keepArraysUpTo: keepArraysUpTo)
                try flag.check()
                return try render(model, contents, metadata, capabilities(of: contents, metadata: metadata))
            }
        }
        return try outcome.get()
    }

    /// What a model can do, for `/api/show`, which has read its weights'
    /// metadata already; the template's scan comes from here.
    public func capabilities(of contents: ModelContents, metadata: GGUFMetadata?) -> [String] {
        let template =
            contents.templateLayer.map { templateFacts(of: $0, in: contents.store) }
            ?? ModelCapabilities.TemplateFacts()
        return ModelCapabilities.derive(
            config: contents.details.capabilities, gguf: metadata.map(ModelCapabilities.GGUFFacts.init),
            hasProjector: contents.hasProjector, template: template, family: contents.details.family)
    }

    func details(of config: Layer, in store: ModelStore) -> ModelDetails {
        guard
            case .details(let details) = fact(
                config.digest, .details, in: store, compute: { .details(store.details(ofConfig: config)) })
        else {
            return ModelDetails()
        }
        return details
    }

    func templateFacts(of layer: Layer, in store: ModelStore) -> ModelCapabilities.TemplateFacts {
        let fact = fact(layer.digest, .template, in: store) {
            guard let text = try? ModelContents.text(store.blobPath(layer.digest)) else { return .unreadable }
            return .template(ModelCapabilities.TemplateFacts(TemplateScan(text)))
        }
        guard case .template(let facts) = fact else { return ModelCapabilities.TemplateFacts() }
        return facts
    }

    private static func gguf(_ path: String) -> Fact {
        do {
            return .gguf(try GGUFMetadata.read(path: path, keepArraysUpTo: 0).map(ModelCapabilities.GGUFFacts.init))
        } catch {
            return .unreadable
        }
    }

    /// The answer to `question` about `digest`, computed outside the lock
    /// the first time. Two callers may compute the same answer at once; one
    /// is kept. It is kept only while the blob is stored: a blob that is
    /// missing (quarantined by `haul verify`, not yet repaired) is asked
    /// again next time, so a repair is seen.
    private func fact(_ digest: Digest, _ question: Question, in store: ModelStore, compute: () -> Fact) -> Fact {
        let key = Key(digest: digest, question: question)
        if let known = facts.withLock({ $0[key] }) { return known }
        let computed = compute()
        guard FileSystem.exists(store.blobPath(digest)) else { return computed }
        facts.withLock { facts in
            if facts.count >= capacity { facts.removeAll(keepingCapacity: true) }
            facts[key] = computed
        }
        return computed
    }
}
