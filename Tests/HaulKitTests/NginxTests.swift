import Foundation
import Testing
@testable import HaulKit

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
        let conf = """
        worker_processes 1;
        daemon off;
        user nobody nogroup;
        pid \(dir.path)/nginx.pid;
        error_log \(dir.path)/error.log;
        events { worker_connections 256; }
        http {
            access_log \(dir.path)/access.log;
            client_body_temp_path \(dir.path)/tmp; proxy_temp_path \(dir.path)/tmp;
            fastcgi_temp_path \(dir.path)/tmp; uwsgi_temp_path \(dir.path)/tmp; scgi_temp_path \(dir.path)/tmp;
            server {
                listen 127.0.0.1:\(registryPort);
                location ~ "^/v2/([^/]+)/([^/]+)/manifests/([^/]+)$" {
                    types { } default_type application/vnd.docker.distribution.manifest.v2+json;
                    alias \(root)/manifests/$1/$2/$3;
                }
                location ~ "^/v2/[^/]+/[^/]+/blobs/sha256:([0-9a-f]{64})$" {
                    return 307 http://127.0.0.1:\(cdnPort)/blobs/sha256-$1;
                }
            }
            server {
                listen 127.0.0.1:\(cdnPort);
                location /blobs/ { root \(root); }
            }
        }
        """
        try conf.write(toFile: dir.sub("nginx.conf"), atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: dir.sub("tmp"), withIntermediateDirectories: true)
        let server = Process()
        server.executableURL = URL(fileURLWithPath: nginx)
        server.arguments = ["-p", dir.path, "-c", dir.sub("nginx.conf"), "-e", dir.sub("error.log")]
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
        #expect(r.status == 0, "\(r.stderr)\n\((try? String(contentsOfFile: dir.sub("error.log"), encoding: .utf8)) ?? "")")
        let store = ModelStore(root: models.path)
        for layer in model.layers {
            #expect(filesEqual(store.blobPath(layer.digest), root + "/blobs/" + layer.digest.fileName))
        }
        #expect(Array(fileBytes(store.manifestPath(try ModelName(parsing: name))) ?? Data()) == model.manifestBytes)
        // Ranges went to the CDN server block, after one 307 per blob.
        let log = (try? String(contentsOfFile: dir.sub("access.log"), encoding: .utf8)) ?? ""
        #expect(log.components(separatedBy: "\" 307 ").count - 1 == model.layers.count)
        #expect(log.contains("\" 206 "))
    }
}
