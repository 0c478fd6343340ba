import Foundation
import HaulTestSupport
import Testing

@testable import HaulKit

/// A web page in the user's browser must not be able to drive `haul
/// serve`: not by a cross-site request (the `Origin` check), not through
/// DNS rebinding (the `Host` check), as Ollama guards its own server.
@Suite(.serialized) struct DaemonExposureTests {
    struct Answer {
        let status: Int
        let headers: String
    }

    /// One request with exactly the headers given, by curl (Foundation
    /// would set `Host` itself).
    static func call(_ daemon: Daemon, _ method: String, _ path: String, headers: [String] = [], body: String? = nil)
        throws -> Answer
    {
        var args = ["-s", "-o", "/dev/null", "-D", "-", "-w", "\n%{http_code}", "-X", method, daemon.url + path]
        for h in headers { args += ["-H", h] }
        if let body { args += ["--data-binary", body] }
        let r = try run("/usr/bin/curl", args)
        let lines = r.stdout.split(separator: "\n", omittingEmptySubsequences: false)
        return Answer(
            status: Int(lines.last ?? "") ?? -1, headers: lines.dropLast().joined(separator: "\n").lowercased())
    }

    @Test func crossSiteAndRebindingRequestsAreRefusedLikeOllama() async throws {
        let fixture = TempDir("haul-exposure")
        let model = try TestModel.make(root: fixture.path, name: "library/tiny:latest", layers: ["64K"])
        let registry = try TestRegistry(root: fixture.path, cdn: false)
        let models = TempDir("haul-models")
        let logs = TempDir("haul-logs")
        let daemon = try await Daemon(
            models: models.path, logs: logs,
            environment: ["OLLAMA_ORIGINS": "https://app.example, https://*.corp.example"])
        let pull = "{\"model\":\"\(registry.host)/\(model.name)\",\"insecure\":true,\"stream\":false}"

        // A page on another site posting a "simple" (no preflight) request.
        let crossSite = try Self.call(
            daemon, "POST", "/api/pull", headers: ["Origin: https://evil.example", "Content-Type: text/plain"],
            body: pull)
        #expect(crossSite.status == 403)
        #expect(try await registry.counter("manifest_requests") == 0, "a refused request must not start a pull")
        // DNS rebinding: the page's origin is its own host name, which now
        // resolves to 127.0.0.1.
        let rebound = try Self.call(
            daemon, "DELETE", "/api/delete",
            headers: [
                "Host: evil.example:\(daemon.url.split(separator: ":").last!)",
                "Origin: http://evil.example:\(daemon.url.split(separator: ":").last!)"
            ],
            body: "{\"model\":\"x\"}")
        #expect(rebound.status == 403)
        #expect(try Self.call(daemon, "GET", "/api/tags", headers: ["Host: attacker.example"]).status == 403)
        let preflightEvil = try Self.call(
            daemon, "OPTIONS", "/api/delete",
            headers: ["Origin: https://evil.example", "Access-Control-Request-Method: DELETE"])
        #expect(preflightEvil.status == 403)

        // What Ollama allows: local names and addresses, its default
        // origins, OLLAMA_ORIGINS (with wildcards), browser extensions.
        for host in [
            "localhost", "127.0.0.1:1", "[::1]:2", "192.168.1.5", "10.0.0.7:80", "box.local", "api.internal", "0.0.0.0"
        ] {
            #expect(try Self.call(daemon, "GET", "/api/tags", headers: ["Host: \(host)"]).status == 200, "Host \(host)")
        }
        for origin in [
            "http://localhost:3000", "https://127.0.0.1", "app://x", "https://app.example", "https://ui.corp.example",
            "chrome-extension://abcdef", "vscode-webview://123"
        ] {
            let r = try Self.call(daemon, "GET", "/api/tags", headers: ["Origin: \(origin)"])
            #expect(r.status == 200, "Origin \(origin)")
            #expect(
                r.headers.contains("access-control-allow-origin: \(origin.lowercased())"), "\(origin): \(r.headers)")
        }
        let preflight = try Self.call(
            daemon, "OPTIONS", "/api/pull",
            headers: [
                "Origin: http://localhost:3000", "Access-Control-Request-Method: POST",
                "Access-Control-Request-Headers: content-type"
            ])
        #expect(preflight.status == 204)
        #expect(
            preflight.headers.contains("access-control-allow-methods: get,post,put,patch,delete,head,options"),
            "\(preflight.headers)")
        #expect(
            preflight.headers.contains("access-control-allow-headers: authorization,content-type"),
            "\(preflight.headers)")
        // Same origin as the Host: not a cross-origin request at all.
        #expect(try Self.call(daemon, "GET", "/api/tags", headers: ["Origin: \(daemon.url)"]).status == 200)
        // An allowed client still pulls.
        let ok = try Self.call(daemon, "POST", "/api/pull", headers: ["Origin: http://localhost:3000"], body: pull)
        #expect(ok.status == 200)
        #expect(ModelStore(root: models.path).list().count == 1)
    }
}
