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
}
