import Foundation
import HaulKit
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle

/// `haul serve`: Ollama's model-management HTTP API over a `Haul`, so the
/// `ollama` CLI and Ollama's client libraries pull through Haul unchanged.
///
/// SIGINT or SIGTERM stops it gracefully: pulls in flight are cancelled
/// (their clients get an error line), their partials checkpointed for a
/// later resume, then the server closes.
public struct HaulDaemon: Sendable {
    public let haul: Haul
    public let host: OllamaHost
    let logger: Logger
    let pullThrough: PullThrough

    /// `pullThrough`: registries whose models the registry API may pull on
    /// a miss (`HAUL_PULL_THROUGH`: `host[:port]` or `http://host[:port]`,
    /// comma-separated); by default none.
    public init(haul: Haul, host: OllamaHost, pullThrough: String? = ProcessInfo.processInfo.environment["HAUL_PULL_THROUGH"],
                logger: Logger = Logger(label: "haul")) {
        self.haul = haul
        self.host = host
        self.logger = logger
        self.pullThrough = PullThrough(haul: haul, upstreams: PullThrough.upstreams(from: pullThrough))
    }

    /// Serves until a signal stops it. `onListening` gets the bound address
    /// (useful with port 0).
    public func run(onListening: @escaping @Sendable (OllamaHost) -> Void = { _ in }) async throws {
        let host = host
        let app = Application(
            router: router(),
            configuration: .init(address: .hostname(host.bindHost, port: host.port), serverName: nil),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? host.port
                onListening(OllamaHost(parsing: "\(host.scheme)://\(Self.literal(host.bindHost)):\(port)"))
            },
            logger: logger
        )
        let group = ServiceGroup(configuration: .init(
            services: [app, PullShutdown(haul: haul)],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        try await group.run()
    }

    func router() -> Router<DaemonContext> {
        let router = Router(context: DaemonContext.self)
        let loopback = IPAddress(host.bindHost)?.isLoopback ?? (host.bindHost.lowercased() == "localhost")
        router.add(middleware: AccessMiddleware(policy: AccessPolicy(environment: ProcessInfo.processInfo.environment,
                                                                     listensOnLoopback: loopback)))
        InfoController().addRoutes(to: router)
        PullController(haul: haul, logger: logger).addRoutes(to: router)
        ModelController(haul: haul).addRoutes(to: router)
        CopyController(haul: haul).addRoutes(to: router)
        OpenAIController(haul: haul).addRoutes(to: router)
        RegistryController(haul: haul, pullThrough: pullThrough).addRoutes(to: router)
        return router
    }

    private static func literal(_ host: String) -> String { host.contains(":") ? "[\(host)]" : host }
}

/// Runs beside the HTTP server and is shut down before it (services stop in
/// reverse order): cancelling every pull ends the streaming responses the
/// server would otherwise wait for.
private struct PullShutdown: Service {
    let haul: Haul

    func run() async throws {
        try? await gracefulShutdown()
        await haul.shutdown()
    }
}
