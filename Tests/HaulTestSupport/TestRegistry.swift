import Foundation
import HaulKit

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The Python test registry (Tests/registry/testregistry.py), started on
/// 127.0.0.1 with ephemeral ports and stopped when the test is done.
package final class TestRegistry: Sendable {
    package let registryPort: Int
    package let cdnPort: Int?
    private let server: ServerProcess

    package static var script: String {
        testsDirectory.appendingPathComponent("registry/testregistry.py").path
    }

    /// `tokenAuth`: registry requests need a Bearer token from the
    /// registry's `/token` realm, issued for `user:password` (Basic),
    /// `anonymous`, or `ollama` (a valid Ollama signature).
    /// `redirectUploads`: uploads are taken in Ollama's parts, each part's
    /// bytes PUT to the CDN listener (needs `cdn`). `maxConcurrent`: blob
    /// GETs beyond that many at once are answered 503 (`busy_refusals`).
    /// `collapseAbove`: with more blob GETs than that at once, all of them
    /// share `collapseRate` (`collapsed_bytes`, `active_max`).
    package init(
        root: String, cdn: Bool = true, rate: String? = nil, slowConnection: Int? = nil, slowFactor: Double = 10,
        tokenAuth: String? = nil, tokenTTL: Double = 300, realm: String? = nil, selfRedirect: Bool = false,
        redirectUploads: Bool = false, maxConcurrent: Int? = nil,
        collapseAbove: Int? = nil, collapseRate: String = "8M",
        ipv6: Bool = false, minClient: String? = nil, headWithoutLength: [Digest] = [],
        namespace: NetworkNamespace? = nil, bind: String? = nil, environment: [String: String] = [:]
    ) throws {
        var args = [Self.script, "serve", "--root", root, "--exit-on-eof"]
        if let bind { args += ["--bind", bind] }
        self.bind = bind
        if let minClient { args += ["--min-client", minClient] }
        args += headWithoutLength.flatMap { ["--head-no-length", $0.hex] }
        if selfRedirect { args.append("--self-redirect") }
        if redirectUploads { args.append("--redirect-uploads") }
        if let maxConcurrent { args += ["--max-concurrent", "\(maxConcurrent)"] }
        if let collapseAbove { args += ["--collapse-above", "\(collapseAbove)", "--collapse-rate", collapseRate] }
        if let realm { args += ["--realm", realm] }
        if ipv6 { args.append("--ipv6") }
        self.ipv6 = ipv6
        if let tokenAuth { args += ["--token-auth", tokenAuth, "--token-ttl", "\(tokenTTL)"] }
        if cdn { args.append("--cdn") }
        if let rate { args += ["--rate", rate] }
        if let slowConnection { args += ["--slow-connection", "\(slowConnection)", "--slow-factor", "\(slowFactor)"] }
        let command =
            namespace?.command("/usr/bin/env", ["python3"] + args) ?? (
                executable: "/usr/bin/env", arguments: ["python3"] + args
            )
        server = try ServerProcess(
            executable: command.executable, arguments: command.arguments, environment: environment)
        let ports = server.firstLine
        registryPort = ports["registry"] as! Int
        cdnPort = ports["cdn"] as? Int
    }

    package func stop() { server.stop() }

    package let ipv6: Bool
    private let bind: String?
    package var host: String {
        bind.map { "\($0):\(registryPort)" } ?? (ipv6 ? "[::1]:\(registryPort)" : "127.0.0.1:\(registryPort)")
    }

    package func stats() async throws -> [String: Any] {
        let (data, _) = try await URLSession.shared.data(from: URL(string: "http://\(host)/_stats")!)
        return try JSONSerialization.jsonObject(with: data) as! [String: Any]
    }

    /// Bytes the blob listener sent for one blob (including any a client
    /// aborted after they were on the wire).
    package func bytesServed(_ digest: Digest) async throws -> Int {
        ((try await stats())["blob_bytes"] as? [String: Int])?[digest.hex] ?? 0
    }

    package func counter(_ name: String) async throws -> Int { (try await stats())[name] as? Int ?? 0 }

    package func list(_ name: String) async throws -> [String] { (try await stats())[name] as? [String] ?? [] }

    package func requests(_ digest: Digest) async throws -> Int {
        ((try await stats())["blob_requests"] as? [String: Int])?[digest.hex] ?? 0
    }

    /// Arms fault rules on the blob listener, e.g.
    /// `[["kind": "status", "status": 503, "times": 2]]`.
    package func arm(_ faults: [[String: Any]]) async throws {
        var request = URLRequest(url: URL(string: "http://\(host)/_faults")!)
        request.httpMethod = "POST"
        request.httpBody = try JSONSerialization.data(withJSONObject: faults)
        _ = try await URLSession.shared.data(for: request)
    }
}

/// A model generated into a registry directory.
package struct TestModel: Sendable {
    package let name: String  // ns/model:tag
    package let manifestPath: String
    package let layers: [Layer]

    /// Writes random layers of the given sizes (plus a config blob) under
    /// `root` with the test registry's generator.
    /// `texts` are text layers as `KIND=TEXT` (template, system, params, license).
    package static func make(root: String, name: String, layers: [String], texts: [String] = []) throws -> TestModel {
        let out = try run(
            "/usr/bin/env",
            ["python3", TestRegistry.script, "make-model", "--root", root, "--name", name]
                + layers.flatMap { ["--layer", $0] } + texts.flatMap { ["--text", $0] })
        guard out.status == 0 else { throw TestFailure("make-model failed: \(out.stderr)") }
        let parts = name.split(separator: ":")
        let repo = parts[0].contains("/") ? String(parts[0]) : "library/" + parts[0]
        let tag = parts.count > 1 ? String(parts[1]) : "latest"
        let path = "\(root)/manifests/\(repo)/\(tag)"
        let manifest = try Manifest(bytes: Array(try Data(contentsOf: URL(fileURLWithPath: path))))
        return TestModel(name: name, manifestPath: path, layers: try manifest.blobs)
    }

    /// Stores under `name` (ns/model:tag) a manifest with `model`'s
    /// layers plus one new 1 KiB layer, so a pull of it finds the shared
    /// layers cached and downloads one blob. Returns `name`.
    package static func copyTag(_ model: TestModel, to name: String, root: String) throws -> String {
        var manifest = try JSONSerialization.jsonObject(with: Data(model.manifestBytes)) as! [String: Any]
        let extra = (0..<1024).map { _ in UInt8.random(in: 0...255) }
        let digest = Digest(hashing: extra)
        FileManager.default.createFile(atPath: root + "/blobs/" + digest.fileName, contents: Data(extra))
        var layers = manifest["layers"] as! [[String: Any]]
        layers.append([
            "mediaType": "application/vnd.ollama.image.license", "digest": digest.description, "size": extra.count
        ])
        manifest["layers"] = layers
        let parts = name.split(separator: ":")
        let path = root + "/manifests/" + parts[0] + "/" + parts[1]
        try JSONSerialization.data(withJSONObject: manifest).write(to: URL(fileURLWithPath: path))
        return name
    }

    package var manifestBytes: [UInt8] { Array((try? Data(contentsOf: URL(fileURLWithPath: manifestPath))) ?? Data()) }

    /// Publishes a manifest list under `name` (ns/model:tag) in a registry
    /// root: each child's manifest becomes a blob (as registries publish
    /// list children), then the list. `children` are (model, runner);
    /// returns the list's bytes.
    @discardableResult
    package static func makeList(root: String, name: String, children: [(TestModel, String)], extra: [String] = [])
        throws -> [UInt8]
    {
        var entries: [String] = []
        for (model, runner) in children {
            let bytes = model.manifestBytes
            let digest = Digest(hashing: bytes)
            FileManager.default.createFile(atPath: root + "/blobs/" + digest.fileName, contents: Data(bytes))
            entries.append(
                #"{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","digest":"\#(digest)","runner":"\#(runner)","format":"gguf"}"#
            )
        }
        let list = Array(
            #"{"schemaVersion":2,"mediaType":"application/vnd.ollama.manifest.list.v2+json","manifests":[\#((entries + extra).joined(separator: ","))]}"#
                .utf8)
        let parts = name.split(separator: ":")
        let directory = root + "/manifests/" + parts[0]
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try Data(list).write(
            to: URL(fileURLWithPath: directory + "/" + (parts.count > 1 ? String(parts[1]) : "latest")))
        return list
    }
}

package struct TestFailure: Error, CustomStringConvertible {
    package let description: String
    package init(_ description: String) { self.description = description }
}
