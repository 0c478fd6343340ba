import Foundation

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A free TCP port on 127.0.0.1 for servers that cannot report the port
/// they bound (docker-registry, tinyproxy).
package func freePort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = 0
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
    _ = withUnsafeMutablePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
    }
    return Int(UInt16(bigEndian: addr.sin_port))
}

/// Polls until something accepts TCP connections on 127.0.0.1:`port`.
package func waitForListener(port: Int, timeout: Double = 20) async throws -> Bool {
    try await waitUntil(timeout: timeout) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        return withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        } == 0
    }
}

/// A test CA and a server certificate for 127.0.0.1/localhost it signed,
/// made with the openssl command line.
package struct TestPKI {
    package let caCert: String
    package let serverCert: String
    package let serverKey: String
    private let dir: TempDir

    /// `dnsNames`: the host names the server certificate is valid for
    /// (besides 127.0.0.1).
    package init(in dir: TempDir = TempDir("haul-pki"), dnsNames: [String] = ["localhost"], ipAddresses: [String] = [])
        throws
    {
        self.dir = dir
        caCert = dir.sub("ca.pem")
        serverCert = dir.sub("server.pem")
        serverKey = dir.sub("server.key")
        let ext = dir.sub("ext.cnf")
        let names = (["IP:127.0.0.1"] + ipAddresses.map { "IP:" + $0 } + dnsNames.map { "DNS:" + $0 }).joined(
            separator: ",")
        try "subjectAltName=\(names)\nbasicConstraints=CA:FALSE\n".write(toFile: ext, atomically: true, encoding: .utf8)
        let steps: [[String]] = [
            [
                "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", dir.sub("ca.key"), "-out", caCert, "-days", "2", "-subj", "/CN=Haul Test CA"
            ],
            [
                "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", serverKey, "-out", dir.sub("server.csr"), "-subj", "/CN=127.0.0.1"
            ],
            [
                "x509", "-req", "-in", dir.sub("server.csr"), "-CA", caCert, "-CAkey", dir.sub("ca.key"),
                "-CAcreateserial", "-out", serverCert, "-days", "2", "-extfile", ext
            ]
        ]
        for step in steps {
            let r = try run("/usr/bin/openssl", step)
            guard r.status == 0 else { throw TestFailure("openssl \(step[0]) failed: \(r.stderr)") }
        }
    }
}

/// Debian's `docker-registry` (the CNCF distribution registry v2) on
/// 127.0.0.1 with filesystem storage, optionally with htpasswd auth and
/// TLS; killed when released.
package final class DockerRegistry {
    package let port: Int
    package let scheme: String
    private var process: BackgroundProcess
    private let dir: TempDir

    package var host: String { "127.0.0.1:\(port)" }
    package var url: String { "\(scheme)://\(host)" }

    /// `redirectBlobsTo`: blob GETs answer 307 to this base URL (the
    /// registry's `redirect` storage middleware, as a CDN setup would).
    /// `proxy`: a pull-through cache of that registry (distribution's proxy
    /// mode), with the upstream's credentials. `tokenRealm`: bearer tokens
    /// from that realm (distribution's `auth: token`).
    package init(
        user: (name: String, password: String)? = nil, tls: TestPKI? = nil, redirectBlobsTo: String? = nil,
        proxy: (url: String, user: String?, password: String?)? = nil, accessLog: Bool = false,
        tokenRealm: TokenRealm? = nil
    ) async throws {
        dir = TempDir("haul-docker-registry")
        port = freePort()
        scheme = tls == nil ? "http" : "https"
        var config = """
            version: 0.1
            log:
              level: error
              accesslog:
                disabled: \(!accessLog)
            storage:
              filesystem:
                rootdirectory: \(dir.sub("data"))
            http:
              addr: 127.0.0.1:\(port)
              secret: haul-test

            """
        if let tls {
            config += "  tls:\n    certificate: \(tls.serverCert)\n    key: \(tls.serverKey)\n"
        }
        if let redirectBlobsTo {
            config +=
                "middleware:\n  storage:\n    - name: redirect\n      options:\n        baseurl: \(redirectBlobsTo)\n"
        }
        if let proxy {
            config += "proxy:\n  remoteurl: \(proxy.url)\n"
            if let user = proxy.user, let password = proxy.password {
                config += "  username: \(user)\n  password: \(password)\n"
            }
        }
        if let user {
            let r = try run("/usr/bin/htpasswd", ["-B", "-b", "-c", dir.sub("htpasswd"), user.name, user.password])
            guard r.status == 0 else { throw TestFailure("htpasswd failed: \(r.stderr)") }
            config += "auth:\n  htpasswd:\n    realm: haul-test\n    path: \(dir.sub("htpasswd"))\n"
        }
        if let tokenRealm {
            config +=
                "auth:\n  token:\n    realm: \(tokenRealm.url)\n    service: haul-test\n"
                + "    issuer: \(tokenRealm.issuer)\n    rootcertbundle: \(tokenRealm.certificate)\n"
        }
        try config.write(toFile: dir.sub("config.yml"), atomically: true, encoding: .utf8)
        process = try await Self.start(dir, port: port)
    }

    private static func start(_ dir: TempDir, port: Int) async throws -> BackgroundProcess {
        let process = try BackgroundProcess(
            ["serve", dir.sub("config.yml")], executable: "/usr/bin/docker-registry",
            models: "", logs: dir)
        guard try await waitForListener(port: port) else {
            throw TestFailure("docker-registry did not start: \(process.stderr)")
        }
        return process
    }

    /// Starts it again after `stop()`, on the same port with the same data.
    package func restart() async throws { process = try await Self.start(dir, port: port) }

    /// Body bytes the registry sent per blob digest (hex), from its access
    /// log (combined format; `accessLog: true`).
    package func blobBytesSent() -> [String: Int] {
        var out: [String: Int] = [:]
        for line in (process.stdout + process.stderr).split(separator: "\n") {
            guard let m = line.firstMatch(of: /"GET [^" ]*\/blobs\/sha256:([0-9a-f]{64})[^"]*" \d{3} (\d+)/) else {
                continue
            }
            out[String(m.1), default: 0] += Int(m.2) ?? 0
        }
        return out
    }

    /// Stops the registry now (the port stops answering).
    package func stop() {
        process.send(SIGKILL)
        process.wait()
    }

    deinit { stop() }

    /// Pushes a model generated under `source` through the registry API.
    package func push(source: String, name: String, user: String? = nil, ca: String? = nil) throws {
        var args = ["python3", TestRegistry.script, "push", "--source", source, "--name", name, "--to", url]
        if let user { args += ["--user", user] }
        if let ca { args += ["--ca", ca] }
        let r = try run("/usr/bin/env", args)
        guard r.status == 0 else { throw TestFailure("push failed: \(r.stderr)") }
    }
}

/// Debian's tinyproxy on 127.0.0.1, logging to a file; killed when released.
package final class Tinyproxy {
    package let port: Int
    private let process: BackgroundProcess
    private let dir: TempDir

    package var url: String { "http://127.0.0.1:\(port)" }
    /// What tinyproxy logged (one line per request, CONNECTs included).
    package var log: String { (try? String(contentsOfFile: dir.sub("tinyproxy.log"), encoding: .utf8)) ?? "" }

    /// In `namespace` when given (its own loopback), else on this one.
    package init(namespace: NetworkNamespace? = nil) async throws {
        dir = TempDir("haul-tinyproxy")
        port = namespace == nil ? freePort() : Int.random(in: 20000...30000)
        let config = """
            Port \(port)
            Listen 127.0.0.1
            Timeout 60
            Allow 127.0.0.1
            MaxClients 200
            LogLevel Info
            LogFile "\(dir.sub("tinyproxy.log"))"
            PidFile "\(dir.sub("tinyproxy.pid"))"

            """
        try config.write(toFile: dir.sub("tinyproxy.conf"), atomically: true, encoding: .utf8)
        let command = (executable: "/usr/bin/tinyproxy", arguments: ["-d", "-c", dir.sub("tinyproxy.conf")])
        let inside = namespace?.command(command.executable, command.arguments) ?? command
        process = try BackgroundProcess(inside.arguments, executable: inside.executable, models: "", logs: dir)
        if let namespace {
            // Its port is on the namespace's loopback: ask from inside.
            guard
                try await waitUntil(
                    timeout: 20,
                    {
                        try namespace.run("/usr/bin/curl", ["-s", "-o", "/dev/null", "http://127.0.0.1:\(port)/"])
                            .status == 0
                    })
            else { throw TestFailure("tinyproxy did not start in \(namespace.name): \(process.stderr)") }
            return
        }
        guard try await waitForListener(port: port) else {
            throw TestFailure("tinyproxy did not start: \(process.stderr)")
        }
    }

    deinit {
        process.send(SIGKILL)
        process.wait()
    }
}

/// Debian's nginx serving a registry-shaped directory as written by
/// `registry/nginxconf.py`: manifests on one port, every blob request sent
/// with a 307 to a CDN server block on another, both over https when
/// `tls` is given. Stopped when released.
package final class NginxRegistry {
    package let registryPort: Int
    package let cdnPort: Int
    private let process: BackgroundProcess
    private let dir: TempDir

    /// Lines of the access log: `BODY_BYTES STATUS URI` (http), or
    /// `SESSION_REUSED CONNECTION BODY_BYTES URI` (https).
    package var accessLog: String {
        (try? String(contentsOfFile: dir.sub(tlsMode ? "tls-access.log" : "access.log"), encoding: .utf8)) ?? ""
    }
    package var errorLog: String { (try? String(contentsOfFile: dir.sub("nginx-error.log"), encoding: .utf8)) ?? "" }
    private let tlsMode: Bool

    /// `dir` must be readable by nginx's worker user (it serves `root` and
    /// writes its logs there).
    package init(dir: TempDir, root: String, tls: TestPKI? = nil) async throws {
        let nginx = "/usr/sbin/nginx"
        guard FileManager.default.isExecutableFile(atPath: nginx) else {
            throw TestFailure("nginx is not installed (apt-get install nginx-light)")
        }
        self.dir = dir
        tlsMode = tls != nil
        (registryPort, cdnPort) = (freePort(), freePort())
        let spec = "\(registryPort):\(cdnPort)" + (tls.map { ":::\($0.serverCert):\($0.serverKey)" } ?? "")
        let conf = try run(
            "/usr/bin/env",
            [
                "python3", testsDirectory.appendingPathComponent("registry/nginxconf.py").path,
                dir.path, root, spec
            ])
        guard conf.status == 0 else { throw TestFailure("nginxconf.py: \(conf.stderr)") }
        process = try BackgroundProcess(
            ["-p", dir.path, "-c", dir.sub("nginx.conf"), "-e", dir.sub("nginx-error.log")],
            executable: nginx, models: "", logs: dir)
        guard try await waitForListener(port: registryPort), try await waitForListener(port: cdnPort) else {
            throw TestFailure("nginx did not start: \(errorLog)")
        }
    }

    /// Empties the access log (nginx reopens it on SIGUSR1), so that what
    /// follows counts only the requests after this call.
    package func clearAccessLog() {
        try? "".write(toFile: dir.sub(tlsMode ? "tls-access.log" : "access.log"), atomically: false, encoding: .utf8)
        process.send(SIGUSR1)
        usleep(200_000)
    }

    deinit {
        process.send(SIGTERM)
        process.wait()
    }
}

/// A token realm for `DockerRegistry` (Tests/registry/tokenrealm.py): RS256
/// JWTs that grant exactly the scopes asked for, signed with a certificate
/// the registry trusts. Records every scope it was asked for.
package final class TokenRealm: Sendable {
    private let server: ServerProcess
    private let dir: TempDir
    package let port: Int
    /// The certificate the registry's `rootcertbundle` names.
    package let certificate: String
    package let issuer: String
    private let scheme: String
    package var url: String { "\(scheme)://127.0.0.1:\(port)/token" }

    /// `tls`: served over HTTPS with that PKI's server certificate (a realm
    /// on another port than the registry's must be HTTPS for Haul).
    package init(user: String? = nil, tls: TestPKI? = nil) throws {
        dir = TempDir("haul-token-realm")
        scheme = tls == nil ? "http" : "https"
        let script = testsDirectory.appendingPathComponent("registry/tokenrealm.py").path
        let options =
            (user.map { ["--user", $0] } ?? [])
            + (tls.map { ["--tls-cert", $0.serverCert, "--tls-key", $0.serverKey] } ?? [])
        server = try ServerProcess(
            executable: "/usr/bin/env", arguments: ["python3", script, "--dir", dir.path] + options)
        port = server.firstLine["port"] as! Int
        certificate = server.firstLine["cert"] as! String
        issuer = server.firstLine["issuer"] as! String
    }

    /// Every scope a client asked a token for, in order.
    package func scopes() throws -> [String] {
        let r = try run("/usr/bin/curl", ["-sfk", "\(scheme)://127.0.0.1:\(port)/_scopes"])
        return try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String] ?? []
    }
}
