import Foundation
import HaulTestSupport
import Testing

@testable import HaulKit

/// A pull from real nginx serving a registry-shaped directory, with blob
/// requests answered by a 307 to a second server block acting as the CDN.
@Suite(.serialized) struct NginxTests {
    @Test func pullsFromNginxWithA307ToACDN() async throws {
        let dir = TempDir("haul-nginx")
        chmod(dir.path, 0o755)
        let root = dir.sub("registry")
        let model = try TestModel.make(
            root: root, name: "library/tiny:q4", layers: ["40M", "500:application/vnd.ollama.image.params"])
        let nginx = try await NginxRegistry(dir: dir, root: root)
        let registryPort = nginx.registryPort
        let models = TempDir("haul-models")
        let name = "127.0.0.1:\(registryPort)/library/tiny:q4"
        let r = try haul(["pull", name, "--insecure"], models: models.path)
        #expect(r.status == 0, "\(r.stderr)\n\(nginx.errorLog)")
        let store = ModelStore(root: models.path)
        for layer in model.layers {
            #expect(filesEqual(store.blobPath(layer.digest), root + "/blobs/" + layer.digest.fileName))
        }
        #expect(Array(fileBytes(store.manifestPath(try ModelName(parsing: name))) ?? Data()) == model.manifestBytes)
        // Ranges went to the CDN server block, after one 307 per blob
        // (log lines: BODY_BYTES STATUS URI).
        let log = nginx.accessLog
        let statuses = log.split(separator: "\n").map {
            $0.split(separator: " ").dropFirst().first.map(String.init) ?? ""
        }
        #expect(statuses.filter { $0 == "307" }.count == model.layers.count)
        #expect(statuses.contains("206"))
    }

    /// Over TLS the range connections resume one TLS session instead of
    /// each making a full handshake: a blob's first range to the CDN goes
    /// alone, and the rest start once its session is in curl's cache. At
    /// most one full handshake with the registry and one per blob with the
    /// CDN (blobs open it concurrently); without the first contact, every
    /// one of the 16 range connections made its own.
    @Test func rangeConnectionsResumeOneTLSSession() async throws {
        let dir = TempDir("haul-nginx-tls")
        chmod(dir.path, 0o755)
        let pki = try TestPKI()
        for path in [pki.serverCert, pki.serverKey] { chmod(path, 0o644) }
        chmod((pki.serverKey as NSString).deletingLastPathComponent, 0o755)
        let root = dir.sub("registry")
        let model = try TestModel.make(root: root, name: "library/tls:latest", layers: ["64M"])
        let nginx = try await NginxRegistry(dir: dir, root: root, tls: pki)
        let registryPort = nginx.registryPort
        nginx.clearAccessLog()
        let models = TempDir("haul-models")
        // Sixteen connections for sure (`--fixed`): what is tested is that they all resume one session.
        let r = try haul(
            [
                "pull", "127.0.0.1:\(registryPort)/library/tls", "--ca-file", pki.caCert, "--connections", "16",
                "--fixed"
            ],
            models: models.path)
        #expect(r.status == 0, "\(r.stderr)\n\(nginx.errorLog)")
        #expect(
            filesEqual(
                ModelStore(root: models.path).blobPath(model.layers[0].digest),
                root + "/blobs/" + model.layers[0].digest.fileName))
        // Log lines: SESSION_REUSED CONNECTION BODY_BYTES URI.
        usleep(200_000)
        let log = nginx.accessLog
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
