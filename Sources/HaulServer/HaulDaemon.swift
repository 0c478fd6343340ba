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

    public init(haul: Haul, host: OllamaHost, logger: Logger = Logger(label: "haul")) {
        self.haul = haul
        self.host = host
        self.logger = logger
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

    func router() -> Router<BasicRequestContext> {
        let router = Router()
        let loopback = IPAddress(host.bindHost)?.isLoopback ?? (host.bindHost.lowercased() == "localhost")
        router.add(middleware: AccessMiddleware(policy: AccessPolicy(environment: ProcessInfo.processInfo.environment,
                                                                     listensOnLoopback: loopback)))
        let pull = PullRoute(haul: haul, logger: logger)
        let models = ModelRoutes(haul: haul)
        router.get("/") { _, _ in Self.running() }
        router.head("/") { _, _ in Self.running() }
        router.get("/api/version") { _, _ in JSONResponse.text("{\"version\":\(ProgressJSON.quote(Versions.ollamaAPI))}") }
        router.head("/api/version") { _, _ in Response(status: .ok) }
        router.post("/api/pull") { request, _ in await pull.respond(request) }
        router.get("/api/tags") { _, _ in models.tags() }
        router.head("/api/tags") { _, _ in Response(status: .ok) }
        router.post("/api/show") { request, _ in await models.show(request) }
        router.delete("/api/delete") { request, _ in await models.delete(request) }
        return router
    }

    private static func running() -> Response {
        Response(status: .ok, headers: [.contentType: "text/plain; charset=utf-8"],
                 body: ResponseBody(byteBuffer: ByteBuffer(string: "Ollama is running")))
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
