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

    /// An nginx server block on the public-looking address: manifests from
    /// `root`, every blob answered with a 307 to `blobsTo` (`$1` is the
    /// digest's hex).
    static func redirectingRegistry(port: Int, root: String, blobsTo: String) -> String {
        """
        server { listen \(publicAddress):\(port) ssl;
            location ~ "^/v2/([^/]+)/([^/]+)/manifests/([^/]+)$" { types { } default_type application/vnd.docker.distribution.manifest.v2+json; alias \(root)/manifests/$1/$2/$3; }
            location ~ "^/v2/[^/]+/[^/]+/blobs/sha256:([0-9a-f]{64})$" { return 307 \(blobsTo); } }
        """
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
              \(Self.redirectingRegistry(port: 8443, root: root, blobsTo: "https://127.0.0.1:9443/blobs/sha256-$1"))
              \(Self.redirectingRegistry(port: 8444, root: root, blobsTo: "https://169.254.169.254/latest/meta-data/"))
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

    /// With a proxy configured and `NO_PROXY` naming loopback, the cloud
    /// metadata address and a private range (a usual corporate and cloud
    /// setting), a registry's redirects to them were reached directly: the
    /// guard was off for any transfer whose first URL had a proxy. Now each
    /// socket is judged by the address it connects to, and only the proxy's
    /// own address and port are exempt. The CLI and the daemon, in a
    /// namespace with no route out; the listeners redirected to count every
    /// connection and must see none.
    @Test(.timeLimit(.minutes(5))) func behindAProxyNoProxyHostsAreStillJudgedPerSocket() async throws {
        let ns = try Self.namespace()
        for inside in ["169.254.169.254/32", "10.9.8.7/32"] { try ns.addAddress(inside) }
        let work = TempDir("haul-proxied")
        let pki = try TestPKI(ipAddresses: [Self.publicAddress])
        let root = Self.fixture.dir.path
        // Listeners that only count connections, where the redirects lead.
        let counter = """
            import socket, sys, threading
            log = open(sys.argv[1], "a", buffering=1)
            def serve(host, port):
                s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind((host, port)); s.listen(16)
                while True:
                    c, _ = s.accept(); log.write("%s:%d\\n" % (host, port)); c.close()
            for h, p in [("127.0.0.1", 9443), ("169.254.169.254", 443), ("10.9.8.7", 443)]:
                threading.Thread(target=serve, args=(h, p), daemon=True).start()
            print("ready", flush=True)
            threading.Event().wait()
            """
        try counter.write(toFile: work.sub("counter.py"), atomically: true, encoding: .utf8)
        let counted = ns.command("/usr/bin/python3", [work.sub("counter.py"), work.sub("connections.log")])
        let listeners = try BackgroundProcess(counted.arguments, executable: counted.executable, models: "", logs: work)
        let conf = """
            daemon off; user root; worker_processes 1; pid \(work.sub("nginx.pid")); error_log \(work.sub("error.log"));
            events {}
            http {
              ssl_certificate \(pki.serverCert); ssl_certificate_key \(pki.serverKey);
              \(Self.redirectingRegistry(port: 8443, root: root, blobsTo: "https://127.0.0.1:9443/blobs/sha256-$1"))
              \(Self.redirectingRegistry(port: 8444, root: root, blobsTo: "https://169.254.169.254/latest/meta-data/"))
              \(Self.redirectingRegistry(port: 8446, root: root, blobsTo: "https://10.9.8.7/blob"))
            }
            """
        try conf.write(toFile: work.sub("nginx.conf"), atomically: true, encoding: .utf8)
        let nginx = ns.command("/usr/sbin/nginx", ["-p", work.path, "-c", work.sub("nginx.conf")])
        let server = try BackgroundProcess(nginx.arguments, executable: nginx.executable, models: "", logs: work)
        let proxy = try await Tinyproxy(namespace: ns)
        defer {
            // nginx's master stops its workers on SIGTERM (on SIGKILL they
            // would keep the log pipes open, and wait() with them).
            server.send(SIGTERM)
            server.wait()
            listeners.send(SIGKILL)
            listeners.wait()
        }
        #expect(
            try await waitUntil(timeout: 20) {
                try ns.run(
                    "/usr/bin/curl",
                    [
                        "-s", "-o", "/dev/null", "--proxy", proxy.url, "--cacert", pki.caCert,
                        "https://\(Self.publicAddress):8443/"
                    ]
                ).status == 0 && listeners.stdout.contains("ready")
            }, "nginx, tinyproxy and the listeners started: \(server.stderr) \(listeners.stderr)")
        let environment = [
            "HTTPS_PROXY": proxy.url, "NO_PROXY": "localhost,127.0.0.1,169.254.169.254,10.0.0.0/8"
        ]
        let cases = [
            (8443, "127.0.0.1 resolves to 127.0.0.1, a loopback address: refused"),
            (8444, "169.254.169.254 resolves to 169.254.169.254, a link-local address: refused"),
            (8446, "10.9.8.7 resolves to 10.9.8.7, a private or reserved address: refused")
        ]
        for (port, expected) in cases {
            let models = TempDir("haul-models")
            var env = environment
            env["OLLAMA_MODELS"] = models.path
            let r = try ns.run(
                haulBinary, ["pull", "\(Self.publicAddress):\(port)/library/tiny", "--ca-file", pki.caCert],
                environment: env)
            #expect(r.status != 0 && r.stderr.contains(expected), "CLI, port \(port): \(r.stderr.suffix(500))")
            #expect(ModelStore(root: models.path).list().isEmpty)
        }
        #expect(proxy.log.contains("CONNECT"), "the registry was reached through the proxy: \(proxy.log)")

        // The daemon, with the same settings, asked by a client.
        let models = TempDir("haul-models")
        let daemonPort = 11434 + Int.random(in: 2001...4000)
        var daemonEnvironment = environment
        daemonEnvironment["OLLAMA_HOST"] = "127.0.0.1:\(daemonPort)"
        let daemon = try BackgroundProcess(
            ["netns", "exec", ns.name, haulBinary, "serve", "--ca-file", pki.caCert], executable: "/usr/sbin/ip",
            models: models.path, environment: daemonEnvironment, logs: TempDir("haul-logs"))
        defer {
            daemon.send(SIGTERM)
            daemon.wait()
        }
        #expect(
            try await waitUntil(timeout: 20) {
                try ns.run("/usr/bin/curl", ["-s", "-o", "/dev/null", "http://127.0.0.1:\(daemonPort)/api/version"])
                    .status == 0
            }, "haul serve started: \(daemon.stderr)")
        for (port, expected) in cases {
            let body = #"{"model":"\#(Self.publicAddress):\#(port)/library/tiny","stream":false}"#
            let r = try ns.run(
                "/usr/bin/curl", ["-s", "-X", "POST", "http://127.0.0.1:\(daemonPort)/api/pull", "-d", body])
            #expect(r.stdout.contains(expected), "daemon, port \(port): \(r.stdout) \(r.stderr)")
        }
        #expect(ModelStore(root: models.path).list().isEmpty)
        let connections = (try? String(contentsOfFile: work.sub("connections.log"), encoding: .utf8)) ?? ""
        #expect(connections.isEmpty, "an inside listener was reached: \(connections)")
    }
}
