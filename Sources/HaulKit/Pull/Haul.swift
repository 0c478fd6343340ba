import Foundation
import Logging
import Synchronization

/// The library's entry point: pulls models into an Ollama model directory.
///
///     let haul = Haul()                       // ~/.ollama/models, defaults
///     for try await event in haul.pull("llama3.2") { ... }
///
/// One `Haul` runs one download engine; concurrent pulls share its
/// connection budget, and a blob wanted by several pulls at once is
/// downloaded once.
///
/// `Haul()` reads no environment variable: its store is Ollama's default
/// directory, its registries are reached anonymously and without mirrors.
/// `Haul.fromEnvironment()` reads what `haul` and `ollama` read
/// (`OLLAMA_MODELS`, `OLLAMA_NOPRUNE`, credentials, proxies, mirrors).
public final class Haul: Sendable {
    /// The models directory pulls write to.
    public let store: ModelStore
    /// Prune after a pull: delete the blobs the replaced manifest used and
    /// nothing uses now, as Ollama does unless `OLLAMA_NOPRUNE` is set.
    public let prune: Bool
    /// What registries are authenticated with.
    public let auth: RegistryAuth
    /// Mirrors (hosts.toml) tried before each registry.
    public let hosts: HostsDirectory
    /// Where notices go (a mirror skipped, at `.notice`; where each blob
    /// came from, at `.debug`), besides the pull's own events; and one
    /// line per pull when it ends (`.info`, message `pull`: model, digest,
    /// bytes, seconds, sources, outcome as metadata).
    public let logger: Logger?
    /// Where pulls, bytes and connections are counted (`HaulMetrics`).
    public let metrics: HaulMetrics
    let engine: Engine
    private let downloads = SharedDownloads()
    private let slots: BlobSlots
    /// Pulls in flight, so `shutdown` can stop them and wait for their last
    /// checkpoints.
    private let running = Mutex<[UInt64: Task<Void, Never>]>([:])
    private let nextPull = Atomic<UInt64>(0)

    /// A `Haul` over `store`, with nothing read from the environment: by default
    /// Ollama's default directory, Haul's engine defaults, pruning on, anonymous
    /// registries, no mirrors and no logger.
    public init(
        store: ModelStore = .ollamaDefault, configuration: EngineConfiguration = EngineConfiguration(),
        prune: Bool = true, auth: RegistryAuth = RegistryAuth(), hosts: HostsDirectory = .none,
        logger: Logger? = nil, metrics: HaulMetrics = HaulMetrics()
    ) {
        self.store = store
        self.prune = prune
        self.auth = auth
        self.hosts = hosts
        self.logger = logger
        self.metrics = metrics
        self.engine = Engine(configuration: configuration, metrics: metrics)
        self.slots = BlobSlots(count: configuration.openBlobs)
    }

    /// A `Haul` set up as the `haul` CLI sets itself up: `OLLAMA_MODELS`,
    /// `OLLAMA_NOPRUNE`, `EngineConfiguration.fromEnvironment()`,
    /// `RegistryAuth.fromEnvironment()` and `HostsDirectory.fromEnvironment()`.
    public static func fromEnvironment(
        _ environment: [String: String] = ProcessInfo.processInfo.environment,
        configuration: EngineConfiguration? = nil, logger: Logger? = nil,
        metrics: HaulMetrics = HaulMetrics()
    ) -> Haul {
        Haul(
            store: .fromEnvironment(environment), configuration: configuration ?? .fromEnvironment(environment),
            prune: !OllamaEnvironment.bool("OLLAMA_NOPRUNE", environment), auth: .fromEnvironment(environment),
            hosts: .fromEnvironment(environment), logger: logger, metrics: metrics)
    }

    /// The engine's settings.
    public var configuration: EngineConfiguration { engine.configuration }

    /// Pulls `name` (Ollama's grammar and defaults). The stream ends after
    /// `.success` or throws a `HaulError`. Stopping the iteration cancels the
    /// pull; data already downloaded stays in the partials directory.
    ///
    /// `runner` picks the child of a manifest list (`llamacpp`, `ggml`,
    /// `mlx`, or an alias Ollama accepts, such as `llama.cpp`); nil takes
    /// Ollama's order for this platform. An unknown runner fails the pull
    /// with `HaulError.unknownRunner`.
    public func pull(_ name: String, insecure: Bool = false, runner: String? = nil) -> AsyncThrowingStream<
        PullEvent, any Error
    > {
        run(name) { puller, emit in
            try await puller.pull(ModelName(pulling: name), insecure: insecure, runner: Self.runner(runner), emit: emit)
        }
    }

    /// The runner a caller named, by Ollama's aliases; nil for none.
    static func runner(_ requested: String?) throws(HaulError) -> String? {
        guard let requested, !requested.trimmingCharacters(in: .whitespaces).isEmpty else { return nil }
        guard let runner = Runner.normalize(requested) else { throw .unknownRunner(requested) }
        return runner
    }

    /// Stores `source`'s manifest (or manifest list) bytes under
    /// `destination` too (Ollama's `CopyModel`): a second name for the same
    /// blobs, none copied, in the layout the store writes. Its blobs are
    /// pinned meanwhile, so a deletion in any process cannot take them from
    /// under the new name.
    public func copy(_ source: ModelName, to destination: ModelName) async throws(HaulError) {
        try await BlockingIO.run { [store] () throws(HaulError) in
            guard let stored = try store.storedManifest(for: source) else {
                throw .modelNotFound(source.displayShortest)
            }
            let pin = try StorePins(store: store).pin(Array(store.retainedDigests(of: stored.name)))
            defer { pin.release() }
            try store.writeManifest(raw: stored.raw, for: destination)
        }
    }

    private var puller: Puller {
        Puller(
            engine: engine, store: store, downloads: downloads, slots: slots, prune: prune, auth: auth, hosts: hosts,
            metrics: metrics)
    }

    /// The manifest digest `name`'s tag has at its registry now, to compare
    /// with the stored model's `id` (`haul list --outdated`).
    public func remoteDigest(of name: ModelName, insecure: Bool = false) async throws -> Digest {
        try await puller.remoteDigest(name, insecure: insecure)
    }

    /// Pulls a name the caller parsed already (the daemon validates it
    /// before answering).
    public func pull(_ name: ModelName, insecure: Bool = false, runner: String? = nil) -> AsyncThrowingStream<
        PullEvent, any Error
    > {
        run(name.displayShortest) { puller, emit in
            try await puller.pull(name, insecure: insecure, runner: Self.runner(runner), emit: emit)
        }
    }

    /// Runs one pull (or repair) of `asked` as a task that `shutdown` can
    /// stop, its events on the stream returned; counts it and logs its line
    /// when it ends.
    private func run(
        _ asked: String,
        _ body: @escaping @Sendable (Puller, @escaping @Sendable (PullEvent) -> Void) async throws -> Void
    )
        -> AsyncThrowingStream<PullEvent, any Error>
    {
        let puller = self.puller
        let logger = self.logger
        let metrics = self.metrics
        return task { emit in
            metrics.pullsStarted.increment()
            metrics.pullsActive.increment()
            defer { metrics.pullsActive.decrement() }
            let record = Mutex(PullRecord(asked: asked))
            do {
                try await body(puller) { event in
                    record.withLock { $0.note(event) }
                    if let logger { Self.log(event, to: logger) }
                    emit(event)
                }
            } catch {
                metrics.pullEnded(error)
                logger?.info("pull", metadata: record.withLock { $0.metadata(error: error) })
                throw error
            }
            metrics.pullEnded(nil)
            logger?.info("pull", metadata: record.withLock { $0.metadata(error: nil) })
        }
    }

    /// Runs `body` as a task that `shutdown` can stop, its events on the
    /// stream returned; stopping the iteration cancels it.
    private func task<Event: Sendable>(
        _ body: @escaping @Sendable (@escaping @Sendable (Event) -> Void) async throws -> Void
    )
        -> AsyncThrowingStream<Event, any Error>
    {
        let (stream, continuation) = AsyncThrowingStream.makeStream(of: Event.self)
        let id = nextPull.add(1, ordering: .relaxed).newValue
        let task = Task { [weak self] in
            do {
                try await body { event in continuation.yield(event) }
                continuation.finish()
            } catch is CancellationError {
                continuation.finish(throwing: HaulError.cancelled)
            } catch {
                continuation.finish(throwing: error)
            }
            _ = self?.running.withLock { $0.removeValue(forKey: id) }
        }
        running.withLock { $0[id] = task }
        continuation.onTermination = { _ in task.cancel() }
        return stream
    }

    /// The tags of `name`'s repository at its registry (the distribution
    /// API's tag list, at most 10,000), for copying every tag.
    public func tags(of name: ModelName, insecure: Bool = false) async throws -> [String] {
        if name.scheme == "http" && !insecure {
            throw HaulError.manifestUnreachable(url: "http://\(name.host)", message: "insecure protocol http")
        }
        return try await RegistryClient(engine: engine, name: name, insecure: insecure, auth: auth).tags()
    }

    /// Pushes the stored model `source` to `destination` (a name at any
    /// registry: `registry.example/team/llama3.2:8b`). Every blob the
    /// registry lacks is uploaded (several at once, each resumable after a
    /// kill from what the registry holds), then the manifest's stored bytes,
    /// so the destination's digest is the source's. Credentials are the
    /// same as for pulls (`auth`). `insecure` allows an `http://` registry.
    /// `chunkSize` is the largest request body, at least 1 MiB (nil: 64 MiB;
    /// a proxy in front of the registry may limit bodies, Cloudflare's to 100 MB).
    public func push(
        _ source: ModelName, to destination: ModelName, insecure: Bool = false,
        chunkSize: Int64? = nil
    ) -> AsyncThrowingStream<PushEvent, any Error> {
        let pusher = Pusher(
            engine: engine, store: store, auth: auth, chunk: max(1 << 20, chunkSize ?? UploadPlan.defaultChunk))
        return task { emit in try await pusher.push(source, to: destination, insecure: insecure, emit: emit) }
    }

    private static func log(_ event: PullEvent, to logger: Logger) {
        switch event {
        case .notice(let text): logger.notice("\(text)")
        case .source(let digest, let host): logger.debug("\(digest.short) from \(host)")
        default: break
        }
    }

    /// Cancels every pull in flight and returns once each has stopped and
    /// written its final checkpoint, so all of them can be resumed later.
    public func shutdown() async {
        let tasks = running.withLock { Array($0.values) }
        for task in tasks { task.cancel() }
        for task in tasks { await task.value }
        await downloads.stopAll()
    }

    /// Fetches again the missing blobs of a stored model (those `haul
    /// verify` quarantined), by its stored manifest.
    public func repair(_ name: ModelName, insecure: Bool = false) -> AsyncThrowingStream<PullEvent, any Error> {
        run(name.displayShortest) { puller, emit in try await puller.repair(name, insecure: insecure, emit: emit) }
    }

    /// Every stored model, as `ollama list` shows them.
    public func list() -> [LocalModel] { store.list() }

    /// Removes a model by name, and the blobs no other model uses. Blocks while another process holds the store's deletion lock; from async code use the `ModelName` overload.
    @discardableResult
    public func remove(_ name: String) throws(HaulError) -> ModelStore.Removal {
        try store.remove(ModelName(parsing: name))
    }

    /// Removes a model without blocking the caller's thread (deleting waits
    /// for the store's deletion lock, which another process may hold).
    @discardableResult
    public func remove(_ name: ModelName) async throws(HaulError) -> ModelStore.Removal {
        let store = self.store
        return try await BlockingIO.run { () throws(HaulError) in try store.remove(name) }
    }
}
