import Foundation
import HaulTestSupport
import Testing

@testable import HaulKit

/// A registry that redirects a blob to loopback or to the link-local cloud
/// metadata address, and a daemon asked to pull from loopback. Each runs in
/// a network namespace of its own, where `203.0.113.10` (a public-looking
/// test address) is a local address and there is no route anywhere else, so a policy bug cannot send a packet off the machine.
/// The hosts redirected to must see no connection at all.
@Suite(.serialized) struct RedirectPolicyTests {
    static let publicAddress = "203.0.113.10"

    static let fixture: (dir: TempDir, model: TestModel) = {
        let dir = TempDir("haul-redirects")
        let model = try! TestModel.make(root: dir.path, name: "library/tiny:latest", layers: ["32K"])
        return (dir, model)
    }()

    static func namespace() throws -> NetworkNamespace {
        let ns = try NetworkNamespace(hostNames: [])
        try ns.addAddress(publicAddress + "/32")
        return ns
    }

    /// The CLI, over TLS to a public registry (no `--insecure`, which
    /// would turn the check off as Ollama's does): the registry's 307 to a
    /// CDN on 127.0.0.1, to 169.254.169.254, and a manifest's 307 to
    /// loopback, are refused before any socket connects.
    @Test func theCLIRefusesARegistrysRedirectToLoopbackOrLinkLocal() async throws {
        let ns = try Self.namespace()
        let work = TempDir("haul-nginx")
        let pki = try TestPKI(ipAddresses: [Self.publicAddress])
        let root = Self.fixture.dir.path
        let conf = """
            daemon off; user root; worker_processes 1; pid \(work.sub("nginx.pid")); error_log \(work.sub("error.log"));
            events {}
            http {
              log_format plain '$server_port $status $request_uri';
              access_log \(work.sub("access.log")) plain;
              ssl_certificate \(pki.serverCert); ssl_certificate_key \(pki.serverKey);
              server { listen \(Self.publicAddress):8443 ssl;
                location ~ "^/v2/([^/]+)/([^/]+)/manifests/([^/]+)$" { types { } default_type application/vnd.docker.distribution.manifest.v2+json; alias \(root)/manifests/$1/$2/$3; }
                location ~ "^/v2/[^/]+/[^/]+/blobs/sha256:([0-9a-f]{64})$" { return 307 https://127.0.0.1:9443/blobs/sha256-$1; } }
              server { listen \(Self.publicAddress):8444 ssl;
                location ~ "^/v2/([^/]+)/([^/]+)/manifests/([^/]+)$" { types { } default_type application/vnd.docker.distribution.manifest.v2+json; alias \(root)/manifests/$1/$2/$3; }
                location ~ "^/v2/[^/]+/[^/]+/blobs/" { return 307 https://169.254.169.254/latest/meta-data/; } }
              server { listen \(Self.publicAddress):8445 ssl;
                location ~ "^/v2/([^/]+)/([^/]+)/manifests/([^/]+)$" { return 307 https://127.0.0.1:9443/manifests/$1/$2/$3; } }
              server { listen 127.0.0.1:9443 ssl; location /blobs/ { root \(root); } }
            }
            """
        try conf.write(toFile: work.sub("nginx.conf"), atomically: true, encoding: .utf8)
        let nginx = ns.command("/usr/sbin/nginx", ["-p", work.path, "-c", work.sub("nginx.conf")])
        let server = try BackgroundProcess(nginx.arguments, executable: nginx.executable, models: "", logs: work)
        defer {
            server.send(SIGTERM)
            server.wait()
        }
        #expect(
            try await waitUntil(timeout: 20) {
                try ns.run(
                    "/usr/bin/curl",
                    ["-s", "-o", "/dev/null", "--cacert", pki.caCert, "https://\(Self.publicAddress):8443/"]
                ).status == 0
            }, "nginx started: \(server.stderr)")

        // A blob redirect (followed by Haul's resolver), a blob redirect
        // to the cloud metadata address, a manifest redirect (followed by
        // curl itself).
        for (port, expected) in [
            (8443, "127.0.0.1, a loopback address: refused"),
            (8444, "169.254.169.254, a link-local address: refused"),
            (8445, "127.0.0.1, a loopback address: refused")
        ] {
            let models = TempDir("haul-models")
            let r = try ns.run(
                haulBinary, ["pull", "\(Self.publicAddress):\(port)/library/tiny", "--ca-file", pki.caCert],
                environment: ["OLLAMA_MODELS": models.path])
            #expect(r.status != 0 && r.stderr.contains(expected), "port \(port): \(r.stderr.suffix(500))")
            #expect(ModelStore(root: models.path).list().isEmpty)
        }
        let log = (try? String(contentsOfFile: work.sub("access.log"), encoding: .utf8)) ?? ""
        #expect(log.contains("8443 307"), "the registry was asked: \(log)")
        #expect(!log.contains("9443 "), "the loopback CDN saw no request: \(log)")
    }

    /// A daemon asked (with `insecure: true`) to pull from a public-looking
    /// registry whose blobs redirect to a listener on 127.0.0.1: refused,
    /// and the listener sees no connection.
    @Test func theDaemonRefusesRedirectsToLoopbackWhateverTheClientSays() async throws {
        let ns = try Self.namespace()
        let registry = try TestRegistry(root: Self.fixture.dir.path, cdn: true, namespace: ns, bind: Self.publicAddress)
        let models = TempDir("haul-models")
        let logs = TempDir("haul-logs")
        let port = 11434 + Int.random(in: 1...2000)
        let daemon = try BackgroundProcess(
            ["netns", "exec", ns.name, haulBinary, "serve"], executable: "/usr/sbin/ip",
            models: models.path, environment: ["OLLAMA_HOST": "127.0.0.1:\(port)"], logs: logs)
        defer {
            daemon.send(SIGTERM)
            daemon.wait()
        }
        #expect(try await waitUntil(timeout: 20) { daemon.stdout.contains("listening on") })
        let body = #"{"model":"\#(registry.host)/library/tiny","insecure":true,"stream":false}"#
        let r = try ns.run("/usr/bin/curl", ["-s", "-X", "POST", "http://127.0.0.1:\(port)/api/pull", "-d", body])
        #expect(r.stdout.contains("127.0.0.1, a loopback address: refused"), "\(r.stdout) \(r.stderr)")
        let stats = try ns.run("/usr/bin/curl", ["-s", "http://\(registry.host)/_stats"])
        let seen = (try? JSONSerialization.jsonObject(with: Data(stats.stdout.utf8))) as? [String: Any] ?? [:]
        #expect((seen["redirects"] as? Int ?? 0) > 0, "the registry redirected: \(stats.stdout)")
        #expect(seen["cdn_connections"] as? Int == 0, "the loopback CDN saw no connection: \(stats.stdout)")
        #expect(ModelStore(root: models.path).list().isEmpty)
    }

    /// A web page or a neighbour cannot make a daemon pull from loopback
    /// (its own admin port, say) unless the operator listed the host.
    @Test func aDaemonPullsFromLoopbackOnlyWhenItsOperatorAllowsIt() async throws {
        let registry = try TestRegistry(root: Self.fixture.dir.path, cdn: false)
        let logs = TempDir("haul-logs")
        let refused = TempDir("haul-models")
        let strict = try await Daemon(models: refused.path, logs: logs, environment: ["HAUL_ALLOW_PRIVATE": ""])
        let reply = try await strict.request(
            "POST", "/api/pull",
            body: #"{"model":"\#(registry.host)/library/tiny","insecure":true,"stream":false}"#)
        #expect(reply.status == 500 && reply.body.contains("a loopback address: refused"), "\(reply.body)")
        #expect(try await registry.counter("manifest_requests") == 0, "the registry was never reached")

        let allowed = TempDir("haul-models")
        let open = try await Daemon(models: allowed.path, logs: logs, environment: ["HAUL_ALLOW_PRIVATE": "127.0.0.1"])
        let pulled = try await open.request(
            "POST", "/api/pull", body: #"{"model":"\#(registry.host)/library/tiny","insecure":true,"stream":false}"#)
        #expect(pulled.status == 200, "\(pulled.body)")
    }
}
