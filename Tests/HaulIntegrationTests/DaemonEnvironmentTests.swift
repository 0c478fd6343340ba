import Foundation
import HaulTestSupport
import Testing

@testable import HaulKit

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The daemon's host lists and addresses, read by one grammar at startup
/// (`EnvironmentHosts`): the README's spellings work, anything else stops
/// `haul serve` with an error that names the variable.
@Suite(.serialized) struct DaemonEnvironmentTests {
    /// `haul serve` with `environment`, ended after 20 s if it starts.
    static func serve(_ environment: [String: String]) throws -> RunResult {
        var env = environment
        env["OLLAMA_HOST"] = "127.0.0.1:0"
        env["OLLAMA_MODELS"] = TempDir("haul-models").path
        return try run("/usr/bin/timeout", ["20", haulBinary, "serve"], environment: env)
    }

    @Test(arguments: [
        ("HAUL_METRICS_ADDR", "127.0.0.1"), ("HAUL_METRICS_ADDR", "9464x"), ("HAUL_METRICS_ADDR", "host:port"),
        ("HAUL_ALLOW_PRIVATE", "*"), ("HAUL_PULL_THROUGH", "ftp://mirror.lan"),
        ("HAUL_SERVE_REGISTRIES", "registry.lan/path")
    ])
    func aValueNoGrammarReadsStopsTheDaemonNamingTheVariable(variable: String, value: String) throws {
        let r = try Self.serve([variable: value])
        #expect(r.status != 0 && r.status != 124, "\(variable)=\(value) started: \(r.stdout) \(r.stderr)")
        #expect(r.stderr.contains(variable) && r.stderr.contains(value), "\(r.stderr)")
    }

    /// `HAUL_METRICS_ADDR=9464` is port 9464 on loopback (it was a host
    /// named `9464` on port 11434, and the daemon died with a bind error).
    @Test func aBarePortIsAMetricsListenerOnLoopback() async throws {
        let port = freePort()
        let daemon = try await Daemon(
            models: TempDir("haul-models").path, logs: TempDir("haul-logs"),
            environment: ["HAUL_METRICS_ADDR": "\(port)"])
        #expect(
            try await waitUntil(timeout: 10) { (try? MetricsTests.scrape("http://127.0.0.1:\(port)/metrics")) != nil })
        #expect(daemon.stop().status == 0)
    }

    /// `HAUL_PULL_THROUGH=http://host:port`, the README's spelling, exempts
    /// its host from the daemon's private-address rule with nothing in
    /// `HAUL_ALLOW_PRIVATE` (it exempted a host named `http`, and the
    /// pull-through was refused).
    @Test func aPullThroughUpstreamSpelledWithItsSchemeIsReached() async throws {
        let fixture = TempDir("haul-pt-fixture")
        _ = try TestModel.make(root: fixture.path, name: "library/tiny:latest", layers: ["64K"])
        let upstream = try TestRegistry(root: fixture.path, cdn: false)
        defer { upstream.stop() }
        let node = try await Daemon(
            models: TempDir("haul-node").path, logs: TempDir("haul-logs"),
            environment: ["HAUL_PULL_THROUGH": "http://\(upstream.host)", "HAUL_ALLOW_PRIVATE": ""])
        let reply = try await node.request("GET", "/v2/library/tiny/manifests/latest?ns=\(upstream.host)")
        #expect(reply.status == 200, "\(reply.body)")
        #expect(try await upstream.counter("manifest_requests") >= 1)
        #expect(node.stop().status == 0)
    }
}
