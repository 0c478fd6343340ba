import Foundation
import HaulTestSupport
import Testing

@testable import HaulKit

/// Pulling a tag that is an Ollama manifest list (Ollama's `server/images.go`
/// `PullModel`, `pullSelectedManifest`): the list asked for first, a child
/// chosen by runner, fetched as a blob and verified, then its layers; the
/// store written as the store's Ollama reads it. And registries that send
/// broken lists, or refuse old clients.
@Suite(.serialized) struct ManifestListPullTests {
    static let listType = "application/vnd.ollama.manifest.list.v2+json"

    /// A registry root with `library/tiny`, a list of a ggml and a
    /// llama.cpp child (different weights, one shared template).
    static let fixture: (dir: TempDir, ggml: TestModel, llamacpp: TestModel, list: [UInt8]) = {
        let dir = TempDir("haul-lists")
        let ggml = try! TestModel.make(
            root: dir.path, name: "library/tiny-ggml:latest", layers: ["96K"], texts: ["template=t"])
        let llamacpp = try! TestModel.make(
            root: dir.path, name: "library/tiny-llamacpp:latest", layers: ["64K"], texts: ["template=t"])
        let list = try! TestModel.makeList(
            root: dir.path, name: "library/tiny:latest", children: [(ggml, "ggml"), (llamacpp, "llamacpp")])
        return (dir, ggml, llamacpp, list)
    }()

    static func statuses(_ stdout: String) -> [[String: Any]] {
        stdout.split(separator: "\n").compactMap {
            (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any]
        }
    }

    @Test func aListPullTakesTheLlamaCppChildAndStoresItAsOllamaDoes() async throws {
        let f = Self.fixture
        let registry = try TestRegistry(root: f.dir.path)
        let models = TempDir("haul-models")
        let ollama = try OllamaStore(models.path)
        let name = "\(registry.host)/library/tiny"
        let r = try haul(["pull", name, "--insecure", "--json"], models: models.path)
        #expect(r.status == 0, "\(r.stderr)")
        // Asked as Ollama ≥ 0.40 asks, as the version Haul speaks as.
        let accepts = try await registry.list("manifest_accepts")
        #expect(accepts.allSatisfy { $0.hasPrefix(Self.listType + ", ") }, "\(accepts)")
        #expect(try await registry.list("user_agents").allSatisfy { $0.hasPrefix("ollama/\(Versions.ollamaAPI) ") })
        // Ollama's vocabulary while the child is fetched.
        let lines = Self.statuses(r.stdout)
        #expect(
            lines.contains { $0["status"] as? String == "pulling model" && $0["digest"] as? String == "sha256:model" },
            "\(r.stdout)")
        #expect(lines.last?["status"] as? String == "success")
        // Stored: the list as received behind the v2 link, the child blob,
        // the llama.cpp layers; none of the ggml child.
        let entry = try ollama.v2Path(name)
        #expect(
            try FileManager.default.destinationOfSymbolicLink(atPath: entry) == "../../../../blobs/"
                + Digest(hashing: f.list).fileName)
        #expect(ollama.intact(Digest(hashing: f.llamacpp.manifestBytes)))
        for layer in f.llamacpp.layers { #expect(ollama.intact(layer.digest)) }
        let onlyGGML = Set(f.ggml.layers.map(\.digest)).subtracting(f.llamacpp.layers.map(\.digest))
        for digest in onlyGGML { #expect(!FileManager.default.fileExists(atPath: ollama.store.blobPath(digest))) }
        let rows = ollama.store.list()
        #expect(rows.count == 1 && rows[0].runner == "llamacpp" && rows[0].tagDigest == Digest(hashing: f.list))
        #expect(StoreCheck.problems(ollama.store).isEmpty)

        // --runner (by one of Ollama's aliases) adds the other child.
        let ggml = try haul(["pull", name, "--insecure", "-q", "--runner", "GGML"], models: models.path)
        #expect(ggml.status == 0, "\(ggml.stderr)")
        #expect(Set(ollama.store.list().map(\.runner)) == ["llamacpp", "ggml"])
        #expect(try haul(["list", "--outdated", "--insecure"], models: models.path).stdout.contains("up to date"))

        let unknown = try haul(["pull", name, "--insecure", "--runner", "cuda"], models: models.path)
        #expect(unknown.status != 0 && unknown.stderr.contains(#"unknown runner "cuda""#), "\(unknown.stderr)")
    }

    /// A store Ollama before 0.40 reads gets the child, which it can run.
    @Test func aLegacyStoreGetsTheRunnableChild() throws {
        let f = Self.fixture
        let registry = try TestRegistry(root: f.dir.path, cdn: false)
        let models = TempDir("haul-models")
        let ollama = try OllamaStore(models.path, v2: false)
        let name = "\(registry.host)/library/tiny"
        let r = try haul(["pull", name, "--insecure", "-q"], models: models.path)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(fileBytes(try ollama.legacyPath(name)).map(Array.init) == f.llamacpp.manifestBytes)
        #expect(!FileManager.default.fileExists(atPath: models.path + "/manifests-v2"))
        #expect(StoreCheck.problems(ollama.store).isEmpty)
    }

    /// Broken lists, each a clear error with no model stored.
    @Test func brokenListsAreClearErrorsAndStoreNothing() throws {
        let dir = TempDir("haul-lists")
        let child = try TestModel.make(root: dir.path, name: "library/child:latest", layers: ["16K"])
        // A child that is itself a list.
        let inner = try TestModel.makeList(
            root: dir.path, name: "library/inner:latest", children: [(child, "llamacpp")])
        FileManager.default.createFile(
            atPath: dir.sub("blobs/" + Digest(hashing: inner).fileName), contents: Data(inner))
        let nestedEntry =
            #"{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","digest":"\#(Digest(hashing: inner))","runner":"llamacpp"}"#
        try TestModel.makeList(root: dir.path, name: "library/nested:latest", children: [], extra: [nestedEntry])
        // No child for any runner Ollama knows (an MLX child would be
        // taken last on Linux).
        try TestModel.makeList(root: dir.path, name: "library/mlxonly:latest", children: [(child, "vllm")])
        // A child whose bytes are not those of its digest.
        let liar = try TestModel.make(root: dir.path, name: "library/liar-child:latest", layers: ["8K"])
        try TestModel.makeList(root: dir.path, name: "library/liar:latest", children: [(liar, "llamacpp")])
        var altered = liar.manifestBytes
        altered[altered.count - 2] = UInt8(ascii: " ")
        FileManager.default.createFile(
            atPath: dir.sub("blobs/" + Digest(hashing: liar.manifestBytes).fileName), contents: Data(altered))
        // A child whose HEAD says no length.
        let quiet = try TestModel.make(root: dir.path, name: "library/quiet-child:latest", layers: ["8K"])
        try TestModel.makeList(root: dir.path, name: "library/quiet:latest", children: [(quiet, "llamacpp")])
        // 10,000 children, and a list over 4 MiB.
        let many = (0..<10_000).map { _ in #"{"digest":"\#(Digest(hashing: child.manifestBytes))","runner":"ggml"}"# }
        try TestModel.makeList(
            root: dir.path, name: "library/many:latest", children: [(child, "llamacpp")], extra: many)
        let padding =
            #"{"digest":"\#(Digest(hashing: child.manifestBytes))","runner":"x","format":"\#(String(repeating: "p", count: 4 << 20))"}"#
        try TestModel.makeList(
            root: dir.path, name: "library/huge:latest", children: [(child, "llamacpp")], extra: [padding])

        let registry = try TestRegistry(
            root: dir.path, cdn: false, headWithoutLength: [Digest(hashing: quiet.manifestBytes)])
        let cases: [(String, String)] = [
            ("nested", "nested manifest lists are not supported"),
            ("mlxonly", "no compatible manifest found for runners: llamacpp, ggml, mlx"),
            ("liar", "digest mismatch"),
            ("quiet", "has no Content-Length"),
            ("many", "at most 256 allowed"),
            ("huge", "larger than")
        ]
        for (model, message) in cases {
            let models = TempDir("haul-models")
            let ollama = try OllamaStore(models.path)
            let r = try haul(["pull", "\(registry.host)/library/\(model)", "--insecure"], models: models.path)
            #expect(r.status != 0 && r.stderr.contains(message), "\(model): \(r.stderr.suffix(400))")
            #expect(
                ollama.store.list().isEmpty && ollama.store.unreadableManifests().isEmpty, "\(model): nothing stored")
        }
    }

    /// The registry refuses models to clients older than they need (412).
    @Test func aRegistryThatWantsANewerClientSaysHowToClaimOne() throws {
        let f = Self.fixture
        let models = TempDir("haul-models")
        let current = try TestRegistry(root: f.dir.path, cdn: false, minClient: "0.40.0")
        #expect(try haul(["pull", "\(current.host)/library/tiny", "--insecure", "-q"], models: models.path).status == 0)
        let newer = try TestRegistry(root: f.dir.path, cdn: false, minClient: "0.41.0")
        let refused = try haul(["pull", "\(newer.host)/library/tiny", "--insecure"], models: models.path)
        #expect(
            refused.status != 0 && refused.stderr.contains("412") && refused.stderr.contains("HAUL_OLLAMA_VERSION"),
            "\(refused.stderr)")
        let claimed = try run(
            haulBinary, ["pull", "\(newer.host)/library/tiny", "--insecure", "-q"],
            environment: ["OLLAMA_MODELS": models.path, "HAUL_OLLAMA_VERSION": "0.41.0"])
        #expect(claimed.status == 0, "\(claimed.stderr)")
    }

    /// Ollama's own Python client pulls a list through the daemon.
    @Test func ollamasPythonClientPullsAListModel() async throws {
        let f = Self.fixture
        let python = try DaemonTests.python
        let registry = try TestRegistry(root: f.dir.path)
        let models = TempDir("haul-models")
        let logs = TempDir("haul-logs")
        _ = try OllamaStore(models.path)
        let daemon = try await Daemon(models: models.path, logs: logs)
        let check = try run(
            python,
            [
                testsDirectory.appendingPathComponent("clients/ollama_list_pull_check.py").path,
                daemon.url, "\(registry.host)/library/tiny"
            ])
        #expect(check.status == 0, "\(check.stderr)")
        let seen = (try? JSONSerialization.jsonObject(with: Data(check.stdout.utf8))) as? [String: Any] ?? [:]
        #expect(seen["digest"] as? String == Digest(hashing: f.llamacpp.manifestBytes).hex, "\(check.stdout)")
    }

    /// `/api/pull` with `runner`, Ollama's stream, and its 400 for an
    /// unknown runner; a node serves the list on to the next client.
    @Test func theDaemonPullsAListByRunnerAndServesItOn() async throws {
        let f = Self.fixture
        let registry = try TestRegistry(root: f.dir.path)
        let models = TempDir("haul-models")
        _ = try OllamaStore(models.path)
        let logs = TempDir("haul-logs")
        let daemon = try await Daemon(models: models.path, logs: logs)
        let name = "\(registry.host)/library/tiny"
        let bad = try await daemon.request(
            "POST", "/api/pull", body: #"{"model":"\#(name)","insecure":true,"runner":"cuda"}"#)
        #expect(bad.status == 400 && bad.json["error"] as? String == #"unknown runner "cuda""#, "\(bad.body)")
        let pulled = try await daemon.request(
            "POST", "/api/pull", body: #"{"model":"\#(name)","insecure":true,"runner":"llama.cpp"}"#)
        #expect(pulled.lines.last?["status"] as? String == "success", "\(pulled.body.suffix(300))")
        #expect(
            pulled.lines.contains {
                $0["status"] as? String == "pulling model" && $0["digest"] as? String == "sha256:model"
            })
        let tags = try await daemon.request("GET", "/api/tags").json["models"] as? [[String: Any]] ?? []
        #expect(tags.count == 1 && (tags.first?["details"] as? [String: Any])?["runner"] as? String == "llamacpp")
        // One child: show has no choice to report.
        #expect(try await daemon.request("POST", "/api/show", body: #"{"model":"\#(name)"}"#).json["manifests"] == nil)

        // Both children: show reports the choice, and `runner` picks one.
        let ggml = try await daemon.request(
            "POST", "/api/pull", body: #"{"model":"\#(name)","insecure":true,"runner":"ggml","stream":false}"#)
        #expect(ggml.status == 200, "\(ggml.body)")
        let shown = try await daemon.request("POST", "/api/show", body: #"{"model":"\#(name)"}"#)
        let summaries = shown.json["manifests"] as? [[String: Any]] ?? []
        #expect(summaries.map { $0["runner"] as? String } == ["ggml", "llamacpp"], "\(shown.body.prefix(400))")
        #expect(
            summaries.first { $0["selected"] as? Bool == true }?["digest"] as? String
                == Digest(hashing: f.llamacpp.manifestBytes).description)
        let asGGML = try await daemon.request("POST", "/api/show", body: #"{"model":"\#(name)","runner":"ggml"}"#)
        #expect(
            (asGGML.json["manifests"] as? [[String: Any]])?.first { $0["selected"] as? Bool == true }?["runner"]
                as? String == "ggml")
        let unknown = try await daemon.request("POST", "/api/show", body: #"{"model":"\#(name)","runner":"cuda"}"#)
        #expect(unknown.status == 400, "\(unknown.body)")
        // Every child at once, each with its runner ahead of its show.
        let all = try await daemon.request("POST", "/api/show", body: #"{"model":"\#(name)","all_manifests":true}"#)
        let shows = all.json["manifests"] as? [[String: Any]] ?? []
        #expect(shows.map { $0["runner"] as? String } == ["ggml", "llamacpp"], "\(all.body.prefix(400))")
        #expect(
            shows.allSatisfy {
                ($0["details"] as? [String: Any])?["format"] as? String == "gguf" && $0["template"] as? String == "t"
            })
        let both = try await daemon.request(
            "POST", "/api/show", body: #"{"model":"\#(name)","all_manifests":true,"runner":"ggml"}"#)
        #expect(both.status == 400 && both.json["error"] as? String == "runner cannot be used with all_manifests")
        let absent = try await daemon.request("POST", "/api/show", body: #"{"model":"\#(name)","runner":"mlx"}"#)
        #expect(
            absent.status == 400 && absent.json["error"] as? String == "no compatible manifest found for runners: mlx",
            "\(absent.body)")

        // A node holding a public list model serves it on: the list to a
        // client that accepts lists, the child as a blob, then the layers.
        let nodeModels = TempDir("haul-node")
        let node = try OllamaStore(nodeModels.path)
        for layer in f.llamacpp.layers {
            try node.blob(
                Array(try Data(contentsOf: URL(fileURLWithPath: f.dir.sub("blobs/" + layer.digest.fileName)))))
        }
        try node.blob(f.llamacpp.manifestBytes)
        try node.linkV2("tiny", f.list)
        let nodeDaemon = try await Daemon(models: nodeModels.path, logs: logs)
        let downstream = TempDir("haul-models")
        let downstreamStore = try OllamaStore(downstream.path)
        let viaNode = try haul(["pull", "\(nodeDaemon.host)/library/tiny", "--insecure", "-q"], models: downstream.path)
        #expect(viaNode.status == 0, "\(viaNode.stderr)")
        #expect(
            try downstreamStore.store.storedManifest(for: ModelName(parsing: "\(nodeDaemon.host)/library/tiny"))?.raw
                == f.list)
        #expect(StoreCheck.problems(downstreamStore.store).isEmpty)
    }

    /// A pull-through node and list models: the first client's pull brings
    /// the list and the child that runs here into the node, and a client
    /// that wants another runner gets that child through the node too.
    /// The upstream sends each blob once.
    @Test func aPullThroughNodeCarriesListsAndEveryRunnerAsked() async throws {
        let f = Self.fixture
        let upstream = try TestRegistry(root: f.dir.path, cdn: false)
        let nodeModels = TempDir("haul-node")
        _ = try OllamaStore(nodeModels.path)
        let logs = TempDir("haul-logs")
        let node = try await Daemon(
            models: nodeModels.path, logs: logs, environment: ["HAUL_PULL_THROUGH": "http://\(upstream.host)"])
        let hosts = try MirrorTests.hostsDirectory(for: upstream.host, mirrors: [node.url])
        let name = "\(upstream.host)/library/tiny"
        let client = TempDir("haul-models")
        let clientStore = try OllamaStore(client.path)
        for runner in ["llamacpp", "ggml"] {
            let r = try run(
                haulBinary, ["pull", name, "--insecure", "--json", "--hosts-dir", hosts.path, "--runner", runner],
                environment: ["OLLAMA_MODELS": client.path])
            #expect(r.status == 0, "\(runner): \(r.stderr)")
            // Blobs the first pull brought (the shared config) are not fetched again.
            let fetched =
                runner == "ggml"
                ? f.ggml.layers.filter { l in !f.llamacpp.layers.contains { $0.digest == l.digest } }
                : f.llamacpp.layers
            for layer in fetched {
                #expect(
                    r.stdout.contains("\"digest\":\"\(layer.digest)\",\"host\":\"\(node.host)\""),
                    "\(runner): came from the node")
            }
        }
        #expect(try clientStore.store.storedManifest(for: ModelName(parsing: name))?.raw == f.list)
        #expect(Set(clientStore.store.list().map(\.runner)) == ["llamacpp", "ggml"])
        #expect(StoreCheck.problems(clientStore.store).isEmpty)
        for layer in f.llamacpp.layers + f.ggml.layers {
            #expect(try await upstream.bytesServed(layer.digest) <= 2 * layer.size, "\(layer.digest.short) sent once")
        }
    }
}
