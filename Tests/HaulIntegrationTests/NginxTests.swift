import Foundation
import Testing
@testable import HaulKit
import HaulTestSupport

/// A pull from real nginx serving a registry-shaped directory, with blob
/// requests answered by a 307 to a second server block acting as the CDN.
@Suite(.serialized) struct NginxTests {
    @Test func pullsFromNginxWithA307ToACDN() throws {
        let nginx = "/usr/sbin/nginx"
        try #require(FileManager.default.isExecutableFile(atPath: nginx), "nginx is not installed (apt-get install nginx-light)")
        let dir = TempDir("haul-nginx")
        chmod(dir.path, 0o755)
        let root = dir.sub("registry")
        let model = try TestModel.make(root: root, name: "library/tiny:q4", layers: ["40M", "500:application/vnd.ollama.image.params"])
        let (registryPort, cdnPort) = (freePort(), freePort())
        let conf = try run("/usr/bin/env", ["python3", testsDirectory.appendingPathComponent("registry/nginxconf.py").path,
                                            dir.path, root, "\(registryPort):\(cdnPort)"])
        try #require(conf.status == 0, "\(conf.stderr)")
        let server = Process()
        server.executableURL = URL(fileURLWithPath: nginx)
        server.arguments = ["-p", dir.path, "-c", dir.sub("nginx.conf"), "-e", dir.sub("nginx-error.log")]
        try server.run()
        defer { server.terminate(); server.waitUntilExit() }
        // Wait until nginx listens.
        for _ in 0..<100 {
            if (try? run("/usr/bin/curl", ["-sf", "-o", "/dev/null", "http://127.0.0.1:\(registryPort)/v2/library/tiny/manifests/q4"]))?.status == 0 { break }
            usleep(50_000)
        }
        let models = TempDir("haul-models")
        let name = "127.0.0.1:\(registryPort)/library/tiny:q4"
        let r = try haul(["pull", name, "--insecure"], models: models.path)
        #expect(r.status == 0, "\(r.stderr)\n\((try? String(contentsOfFile: dir.sub("nginx-error.log"), encoding: .utf8)) ?? "")")
        let store = ModelStore(root: models.path)
        for layer in model.layers {
            #expect(filesEqual(store.blobPath(layer.digest), root + "/blobs/" + layer.digest.fileName))
        }
        #expect(Array(fileBytes(store.manifestPath(try ModelName(parsing: name))) ?? Data()) == model.manifestBytes)
        // Ranges went to the CDN server block, after one 307 per blob
        // (log lines: BODY_BYTES STATUS URI).
        let log = (try? String(contentsOfFile: dir.sub("access.log"), encoding: .utf8)) ?? ""
        let statuses = log.split(separator: "\n").map { $0.split(separator: " ").dropFirst().first.map(String.init) ?? "" }
        #expect(statuses.filter { $0 == "307" }.count == model.layers.count)
        #expect(statuses.contains("206"))
    }

    /// Over TLS the range connections resume one TLS session instead of
    /// each making a full handshake: a blob's first range to the CDN goes
    /// alone, and the rest start once its session is in curl's cache. At
    /// most one full handshake with the registry and one per blob with the
    /// CDN (blobs open it concurrently); without the first contact, every
    /// one of the 16 range connections made its own.
    @Test func rangeConnectionsResumeOneTLSSession() throws {
        let nginx = "/usr/sbin/nginx"
        try #require(FileManager.default.isExecutableFile(atPath: nginx), "nginx is not installed (apt-get install nginx-light)")
        let dir = TempDir("haul-nginx-tls")
        chmod(dir.path, 0o755)
        let pki = try TestPKI()
        for path in [pki.serverCert, pki.serverKey] { chmod(path, 0o644) }
        chmod((pki.serverKey as NSString).deletingLastPathComponent, 0o755)
        let root = dir.sub("registry")
        let model = try TestModel.make(root: root, name: "library/tls:latest", layers: ["64M"])
        let (registryPort, cdnPort) = (freePort(), freePort())
        let conf = try run("/usr/bin/env", ["python3", testsDirectory.appendingPathComponent("registry/nginxconf.py").path,
                                            dir.path, root, "\(registryPort):\(cdnPort):::\(pki.serverCert):\(pki.serverKey)"])
        try #require(conf.status == 0, "\(conf.stderr)")
        let server = Process()
        server.executableURL = URL(fileURLWithPath: nginx)
        server.arguments = ["-p", dir.path, "-c", dir.sub("nginx.conf"), "-e", dir.sub("nginx-error.log")]
        try server.run()
        defer { server.terminate(); server.waitUntilExit() }
        for _ in 0..<100 {
            if (try? run("/usr/bin/curl", ["-sf", "--cacert", pki.caCert, "-o", "/dev/null",
                                           "https://127.0.0.1:\(registryPort)/v2/library/tls/manifests/latest"]))?.status == 0 { break }
            usleep(50_000)
        }
        try "".write(toFile: dir.sub("tls-access.log"), atomically: false, encoding: .utf8)
        _ = kill(server.processIdentifier, SIGUSR1)  // reopen the emptied log
        usleep(200_000)
        let models = TempDir("haul-models")
        let r = try haul(["pull", "127.0.0.1:\(registryPort)/library/tls", "--ca-file", pki.caCert, "--connections", "16"],
                         models: models.path)
        #expect(r.status == 0, "\(r.stderr)\n\((try? String(contentsOfFile: dir.sub("nginx-error.log"), encoding: .utf8)) ?? "")")
        #expect(filesEqual(ModelStore(root: models.path).blobPath(model.layers[0].digest), root + "/blobs/" + model.layers[0].digest.fileName))
        // Log lines: SESSION_REUSED CONNECTION BODY_BYTES URI.
        usleep(200_000)
        let log = (try? String(contentsOfFile: dir.sub("tls-access.log"), encoding: .utf8)) ?? ""
        var reusedByConnection: [String: String] = [:]
        for line in log.split(separator: "\n") {
            let f = line.split(separator: " ")
            if f.count == 4 { reusedByConnection[String(f[1])] = String(f[0]) }
        }
        let full = reusedByConnection.values.filter { $0 != "r" }.count
        let blobs = model.layers.count + 1  // and the config
        #expect(reusedByConnection.count >= 8, "range connections: \(reusedByConnection.count)\n\(log)")
        #expect(full <= 1 + blobs, "\(full) full handshakes on \(reusedByConnection.count) connections\n\(log)")
    }
}
