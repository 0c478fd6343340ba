/// The library's entry point: pulls models into an Ollama model directory.
///
///     let haul = Haul()                       // $OLLAMA_MODELS, defaults
///     for try await event in haul.pull("llama3.2") { ... }
///
/// One `Haul` runs one download engine; concurrent pulls share its
/// connection budget.
public final class Haul: Sendable {
    public let store: ModelStore
    let engine: Engine

    public init(store: ModelStore = .fromEnvironment(), configuration: EngineConfiguration = EngineConfiguration()) {
        self.store = store
        self.engine = Engine(configuration: configuration)
    }

    public var configuration: EngineConfiguration { engine.configuration }

    /// Pulls `name` (Ollama's grammar and defaults). The stream ends after
    /// `.success` or throws a `HaulError`. Stopping the iteration cancels the
    /// pull; data already downloaded stays in the partials directory.
    public func pull(_ name: String, insecure: Bool = false) -> AsyncThrowingStream<PullEvent, any Error> {
        let (stream, continuation) = AsyncThrowingStream.makeStream(of: PullEvent.self)
        let puller = Puller(engine: engine, store: store)
        let task = Task {
            do {
                let parsed = try ModelName(parsing: name)
                try await puller.pull(parsed, insecure: insecure) { continuation.yield($0) }
                continuation.finish()
            } catch is CancellationError {
                continuation.finish(throwing: HaulError.cancelled)
            } catch {
                continuation.finish(throwing: error)
            }
        }
        continuation.onTermination = { _ in task.cancel() }
        return stream
    }

    public func list() -> [LocalModel] { store.list() }

    public func remove(_ name: String) throws(HaulError) {
        try store.remove(ModelName(parsing: name))
    }
}
