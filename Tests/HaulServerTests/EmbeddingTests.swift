import Foundation
import HaulKit
import HaulServer
import HaulTestSupport
import Hummingbird
import HummingbirdTesting
import Logging
import ServiceLifecycle
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The daemon as a library, used only through its public API: its routes
/// mounted in another application's router (with its own context and
/// routes), and the daemon as a `Service` in the embedder's group.
@Suite struct EmbeddingTests {
    @Test func routesMountInAnotherApplicationWithTheAccessRulesOnTheirsOnly() async throws {
        let models = TempDir("haul-embed")
        let haul = Haul(store: ModelStore(root: models.path))
        let daemon = HaulDaemon(haul: haul, host: OllamaHost(parsing: "127.0.0.1:8080"))
        let router = Router(context: BasicRequestContext.self)
        router.get("/health") { _, _ in "ok" }
        daemon.addRoutes(to: router)
        try await Application(router: router).test(.router) { client in
            let version = try await client.execute(uri: "/api/version", method: .get)
            #expect(version.status == .ok && String(buffer: version.body).contains("\"version\""))
            let tags = try await client.execute(uri: "/api/tags", method: .get)
            #expect(tags.status == .ok && String(buffer: tags.body) == #"{"models":[]}"#)
            // A page from another origin is refused by the daemon's routes,
            // and the application's own route is the application's business.
            let evil: HTTPFields = [.origin: "https://evil.example"]
            let refused = try await client.execute(uri: "/api/tags", method: .get, headers: evil)
            #expect(refused.status == .forbidden)
            let health = try await client.execute(uri: "/health", method: .get, headers: evil)
            #expect(health.status == .ok && String(buffer: health.body) == "ok")
        }
        await haul.shutdown()
    }

    @Test(.timeLimit(.minutes(1))) func theDaemonRunsAsAServiceAndStopsWithItsGroup() async throws {
        let models = TempDir("haul-embed")
        let haul = Haul(store: ModelStore(root: models.path))
        let (bound, continuation) = AsyncStream.makeStream(of: OllamaHost.self)
        let daemon = HaulDaemon(haul: haul, host: OllamaHost(parsing: "127.0.0.1:0")) { continuation.yield($0) }
        let group = ServiceGroup(configuration: .init(services: [daemon], logger: Logger(label: "test")))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            var iterator = bound.makeAsyncIterator()
            let address = try #require(await iterator.next())
            #expect(address.port != 0)
            let url = URL(string: address.clientURL + "/api/version")!
            let (data, response) = try await URLSession.shared.data(from: url)
            #expect(
                (response as? HTTPURLResponse)?.statusCode == 200
                    && String(decoding: data, as: UTF8.self).contains("version"))
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
    }
}
