import HaulKit
import Hummingbird
import HummingbirdTesting

@testable import HaulServer

/// Runs `body` against the daemon's router over `store` in process
/// (HummingbirdTesting's router framework: no socket), with no mirrors and
/// no pull-through, serving the public registries' and example.com's models
/// on `/v2/` unless `node` says otherwise, then shuts the daemon's `Haul` down.
func withDaemon(
    store: ModelStore, node: HaulDaemon.Node = HaulDaemon.Node(registries: ["example.com"]),
    _ body: @Sendable (any TestClientProtocol) async throws -> Void
) async throws {
    let haul = Haul(store: store, hosts: HostsDirectory(directories: []))
    let daemon = HaulDaemon(haul: haul, host: OllamaHost(parsing: "127.0.0.1:11434"), pullThrough: nil, node: node)
    let app = Application(router: daemon.router())
    do {
        try await app.test(.router, body)
    } catch {
        await haul.shutdown()
        throw error
    }
    await haul.shutdown()
}
