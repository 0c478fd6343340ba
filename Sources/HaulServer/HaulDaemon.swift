import Foundation
import HaulKit
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

/// `haul serve`: Ollama's model-management HTTP API and the distribution
/// API's read side over a `Haul`, so the `ollama` CLI, Ollama's client
/// libraries and other registries' clients pull through Haul unchanged.
///
/// Three ways to run it:
/// - `runUntilSignalled()`: a process of its own, as `haul serve` runs it;
///   SIGINT or SIGTERM stops it gracefully.
/// - As a swift-service-lifecycle `Service` in the embedder's own
///   `ServiceGroup`: `run()` serves until that group shuts down gracefully.
/// - Its routes in the embedder's Hummingbird application:
///   `addRoutes(to:)`, with the access rules applied to those routes only.
///
/// A graceful shutdown cancels the pulls in flight (their clients get an
/// error line) and checkpoints their partials for a later resume, then the
/// server closes.
public struct HaulDaemon: Service {
    /// The models it serves and the engine its pulls run on.
    public let haul: Haul
    /// Where `run()` listens; a loopback address also turns the `Host`
    /// check on (see `Access`).
    public let host: OllamaHost
    /// Who may call it.
    public let access: Access
    let logger: Logger
    let pullThrough: PullThrough
    /// What `/v2/` serves, and to whom.
    public let node: Node
    /// Who may change models or send them to a registry.
    public let writes: Writes
    /// What listings and shows read of each blob, kept across requests.
    let facts = ModelFacts()
    let onListening: @Sendable (OllamaHost) -> Void
    /// What `GET /metrics` renders; nil: no such route.
    public let metrics: DaemonMetrics?
    /// Where `/metrics` is served instead of `host` (`HAUL_METRICS_ADDR`),
    /// with the same access rules for that address; nil: beside the API.
    public let metricsHost: OllamaHost?

    /// Who may call the daemon, as Ollama decides it: browsers only from
    /// allowed origins (Ollama's defaults plus `allowedOrigins`, patterns
    /// with one `*`), and, when `checkHost`, only requests whose `Host`
    /// names this machine (against DNS rebinding).
    public struct Access: Sendable {
        /// Origins allowed besides Ollama's defaults (`OLLAMA_ORIGINS`).
        public var allowedOrigins: [String]
        /// Refuse requests whose `Host` does not name this machine.
        public var checkHost: Bool

        /// Rules from explicit values.
        public init(allowedOrigins: [String] = [], checkHost: Bool) {
            self.allowedOrigins = allowedOrigins
            self.checkHost = checkHost
        }

        /// Ollama's rules for a daemon listening on `host`: the default
        /// origins, and the `Host` check when it listens on loopback.
        public static func defaults(listeningOn host: OllamaHost) -> Access {
            let loopback = IPAddress(host.bindHost)?.isLoopback ?? (host.bindHost.lowercased() == "localhost")
            return Access(checkHost: loopback)
        }

        /// `defaults(listeningOn:)` plus `OLLAMA_ORIGINS` (comma-separated).
        public static func fromEnvironment(
            _ environment: [String: String] = ProcessInfo.processInfo.environment,
            listeningOn host: OllamaHost
        ) -> Access {
            var access = defaults(listeningOn: host)
            access.allowedOrigins = OllamaEnvironment.string("OLLAMA_ORIGINS", environment).split(separator: ",")
                .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            return access
        }
    }

    /// Who may change the store or send to a registry through the API
    /// (`/api/pull`, `/api/push`, `/api/copy`, `/api/delete`), and where
    /// pushes may use the daemon's credentials. The default is Ollama's:
    /// no token, and no push with the daemon's credentials.
    public struct Writes: Sendable {
        /// When set, those routes answer only requests that carry it, as a
        /// bearer token or as the password of Basic authentication.
        public var token: String?
        /// Registries (`host[:port]`) the daemon's clients may push to
        /// with the credentials it holds for them. A push to a registry it
        /// holds none for needs no listing.
        public var pushRegistries: [String]

        /// Rules from explicit values; by default no token, and pushes only
        /// where the daemon holds no credentials.
        public init(token: String? = nil, pushRegistries: [String] = []) {
            self.token = token
            self.pushRegistries = pushRegistries
        }

        /// `HAUL_API_TOKEN`, else `HAUL_NODE_TOKEN` (a node that guards
        /// `/v2/` guards its writes too), and `HAUL_PUSH_REGISTRIES`
        /// (comma-separated `host[:port]`).
        public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment)
            -> Writes
        {
            let token = ["HAUL_API_TOKEN", "HAUL_NODE_TOKEN"].lazy.map { OllamaEnvironment.string($0, environment) }
                .first { !$0.isEmpty }
            let push = EnvironmentHosts.readable(OllamaEnvironment.string("HAUL_PUSH_REGISTRIES", environment))
            return Writes(token: token, pushRegistries: push.map(\.authority))
        }
    }

    /// What the distribution API (`/v2/`) hands out, and to whom: the
    /// operator's choice, since the store may hold models pulled with the
    /// operator's own credentials.
    public struct Node: Sendable {
        /// The public registries served by default.
        public static let publicRegistries = ["registry.ollama.ai", "hf.co", "huggingface.co"]
        /// Registries (`host[:port]`) whose stored models `/v2/` serves.
        public var registries: Set<String>
        /// When set, `/v2/` answers only requests that carry it, as a
        /// bearer token or as the password of Basic authentication.
        public var token: String?

        /// The public registries, plus `registries`, with an optional token.
        public init(registries: [String] = [], token: String? = nil) {
            self.registries = Set((Self.publicRegistries + registries).map { $0.lowercased() })
            self.token = token
        }

        /// `HAUL_SERVE_REGISTRIES` (comma-separated `host[:port]`) and
        /// `HAUL_NODE_TOKEN`.
        public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment)
            -> Node
        {
            let listed = EnvironmentHosts.readable(OllamaEnvironment.string("HAUL_SERVE_REGISTRIES", environment))
            return Node(
                registries: listed.map(\.authority),
                token: Optional(OllamaEnvironment.string("HAUL_NODE_TOKEN", environment)).flatMap {
                    $0.isEmpty ? nil : $0
                })
        }
    }

    /// - Parameters:
    ///   - host: where `run()` listens (Ollama's `OLLAMA_HOST` grammar).
    ///   - access: who may call; by default Ollama's rules for `host`.
    ///   - pullThrough: registries whose models the distribution API may
    ///     pull on a miss (`host[:port]` or `http://host[:port]`,
    ///     comma-separated, as `HAUL_PULL_THROUGH`); by default none. They
    ///     are served too: listing one is the choice to hand out its models.
    ///   - node: which registries' models `/v2/` serves, and its token.
    ///   - writes: who may change models or push them, and where pushes
    ///     may use the daemon's credentials.
    ///   - metrics: the registry `GET /metrics` renders; give its `factory`
    ///     to the `Haul` (`HaulMetrics(factory:)`) so the pulls' metrics
    ///     are in it. Nil: no `/metrics`.
    ///   - metricsHost: serve `/metrics` on this address only (a listener
    ///     of its own, e.g. for a scraper on another interface).
    ///   - onListening: called with the bound address once `run()` listens
    ///     (useful with port 0).
    public init(
        haul: Haul, host: OllamaHost, access: Access? = nil, pullThrough: String? = nil, node: Node = Node(),
        writes: Writes = Writes(), metrics: DaemonMetrics? = nil, metricsHost: OllamaHost? = nil,
        logger: Logger = Logger(label: "haul"), onListening: @escaping @Sendable (OllamaHost) -> Void = { _ in }
    ) {
        self.haul = haul
        self.metrics = metrics
        self.metricsHost = metrics == nil ? nil : metricsHost
        self.host = host
        self.access = access ?? .defaults(listeningOn: host)
        self.logger = logger
        let upstreams = PullThrough.upstreams(from: pullThrough)
        self.pullThrough = PullThrough(haul: haul, upstreams: upstreams)
        var node = node
        node.registries.formUnion(upstreams.keys)
        self.node = node
        self.writes = writes
        self.onListening = onListening
    }

    /// Serves until the `ServiceGroup` this runs in shuts down gracefully
    /// (or the task is cancelled); handles no signals itself.
    public func run() async throws {
        let host = host
        let onListening = onListening
        let app = Application(
            router: router(),
            configuration: .init(address: .hostname(host.bindHost, port: host.port), serverName: nil),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? host.port
                onListening(OllamaHost(parsing: "\(host.scheme)://\(Self.literal(host.bindHost)):\(port)"))
            },
            logger: logger
        )
        var services: [any Service] = [app]
        if let metrics, let metricsHost {
            services.append(
                Application(
                    router: metricsRouter(metrics, on: metricsHost),
                    configuration: .init(
                        address: .hostname(metricsHost.bindHost, port: metricsHost.port), serverName: nil),
                    logger: logger))
        }
        // Services stop in reverse order: the pulls are cancelled first, which
        // ends the streaming responses the server would otherwise wait for.
        services.append(PullShutdown(haul: haul))
        try await ServiceGroup(configuration: .init(services: services, logger: logger)).run()
    }

    /// Serves until SIGINT or SIGTERM, then shuts down gracefully: what
    /// `haul serve` runs.
    public func runUntilSignalled() async throws {
        try await ServiceGroup(
            configuration: .init(
                services: [self], gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger)
        ).run()
    }

    /// Adds every route (Ollama's `/api/…`, `/v1/models`, `/`, and the
    /// distribution API's `/v2/…`) to `router`, behind the access rules,
    /// which apply to these routes only. The embedder runs the `Haul` and
    /// calls `haul.shutdown()` when it stops.
    public func addRoutes<Context: RequestContext>(to router: Router<Context>) {
        var group = router.group()
        if let metrics { group = group.add(middleware: RequestMetricsMiddleware<Context>(metrics: metrics)) }
        group = group.add(middleware: AccessMiddleware<Context>(policy: AccessPolicy(access)))
        let routes = PreflightedRoutes(group: group)
        if let metrics, metricsHost == nil {
            MetricsController(metrics: metrics, store: haul.store).addRoutes(to: routes)
        }
        InfoController().addRoutes(to: routes)
        let writes = WriteGuard(writes)
        PullController(haul: haul, writes: writes, logger: logger).addRoutes(to: routes)
        PushController(haul: haul, writes: writes, logger: logger).addRoutes(to: routes)
        ModelController(haul: haul, facts: facts, writes: writes).addRoutes(to: routes)
        CopyController(haul: haul, writes: writes).addRoutes(to: routes)
        OpenAIController(haul: haul).addRoutes(to: routes)
        RegistryController(haul: haul, pullThrough: pullThrough, node: node, metrics: metrics).addRoutes(to: routes)
        routes.addPreflights()
    }

    /// The separate listener's router: `/metrics` alone, behind the access
    /// rules for its own address (the `Host` check when it is loopback) and
    /// the daemon's allowed origins.
    func metricsRouter(_ metrics: DaemonMetrics, on host: OllamaHost) -> Router<DaemonContext> {
        let router = Router(context: DaemonContext.self)
        var rules = Access.defaults(listeningOn: host)
        rules.allowedOrigins = access.allowedOrigins
        let group = router.group().add(middleware: AccessMiddleware<DaemonContext>(policy: AccessPolicy(rules)))
        MetricsController(metrics: metrics, store: haul.store).addRoutes(to: PreflightedRoutes(group: group))
        return router
    }

    func router() -> Router<DaemonContext> {
        let router = Router(context: DaemonContext.self)
        addRoutes(to: router)
        return router
    }

    private static func literal(_ host: String) -> String { host.contains(":") ? "[\(host)]" : host }
}

/// Runs beside the HTTP server and is shut down before it: cancelling every
/// pull ends the streaming responses the server would otherwise wait for.
private struct PullShutdown: Service {
    let haul: Haul

    func run() async throws {
        try? await gracefulShutdown()
        await haul.shutdown()
    }
}

/// The routes' group, recording each path added, so that a CORS preflight
/// (`OPTIONS`) of any of them reaches the access rules, which answer it: a
/// group's middleware runs only when one of its routes matches the path
/// and method.
private struct PreflightedRoutes<Context: RequestContext>: RouterMethods {
    let group: RouterGroup<Context>
    private let paths = PathList()

    init(group: RouterGroup<Context>) { self.group = group }

    @discardableResult
    func on<Responder: HTTPResponder>(_ path: RouterPath, method: HTTPRequest.Method, responder: Responder) -> Self
    where Responder.Context == Context {
        group.on(path, method: method, responder: responder)
        paths.add(path)
        return self
    }

    func add(middleware: any MiddlewareProtocol<Request, Response, Context>) -> Self {
        PreflightedRoutes(group: group.add(middleware: middleware))
    }

    /// An `OPTIONS` route per path; the access rules answer before it runs.
    func addPreflights() {
        for path in paths.all { group.on(path, method: .options) { _, _ in Response(status: .noContent) } }
    }
}

/// Paths in the order first added. Routes are added from one task while
/// the router is built; the lock only makes that checkable.
private final class PathList: Sendable {
    private let storage = Mutex<[RouterPath]>([])

    func add(_ path: RouterPath) {
        storage.withLock { paths in
            if !paths.contains(where: { $0.description == path.description }) { paths.append(path) }
        }
    }

    var all: [RouterPath] { storage.withLock { $0 } }
}
