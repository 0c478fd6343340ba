import Foundation
import HaulTestSupport
import Testing

@testable import HaulKit

/// `haul` and `haul serve` on a models directory shared with Ollama ≥ 0.40
/// (built as Ollama lays it out: `OllamaStore`): what each command sees,
/// what it writes, and that nothing either tree names disappears.
@Suite(.serialized) struct SharedStoreCLITests {
    static let model = "application/vnd.ollama.image.model"
    static let listType = "application/vnd.ollama.manifest.list.v2+json"

    /// `a` legacy, `b` a v2 link sharing `a`'s weights, `c` a v2 link to a
    /// list with one local llama.cpp child.
    struct Shared {
        let ollama: OllamaStore
        let a: (bytes: [UInt8], layers: [OllamaStore.Layer0])
        let b: (bytes: [UInt8], layers: [OllamaStore.Layer0])
        let child: (bytes: [UInt8], layers: [OllamaStore.Layer0])
        let list: [UInt8]

        init(_ dir: TempDir) throws {
            ollama = try OllamaStore(dir.path)
            a = try ollama.image([(model, "shared weights"), ("application/vnd.ollama.image.template", "a")])
            try ollama.legacy("a", a.bytes)
            b = try ollama.image([(model, "shared weights"), ("application/vnd.ollama.image.template", "b")])
            try ollama.linkV2("b", b.bytes)
            child = try ollama.image([(model, "c weights")])
            list = try ollama.list([.reference(manifest: child.bytes, runner: "llamacpp", stored: true)])
            try ollama.linkV2("c", list)
        }
    }

    @Test func listVerifyAndRmSeeBothTreesAndRmKeepsWhatOllamaUses() throws {
        let models = TempDir("haul-models")
        let s = try Shared(models)
        let listed = try haul(["list"], models: models.path)
        for name in ["a:latest", "b:latest", "c:latest"] { #expect(listed.stdout.contains(name), "\(listed.stdout)") }

        let verified = try haul(["verify", "--all"], models: models.path)
        #expect(verified.status == 0, "\(verified.stderr)")
        // a: 3 blobs; b: template and its manifest blob; c: weights, list
        // and child blobs (the config is one blob for all).
        #expect(verified.stderr.contains("8 blobs of 3 models checked: 0 bad"), "\(verified.stderr)")

        let removed = try haul(["rm", "a"], models: models.path)
        #expect(removed.status == 0, "\(removed.stderr)")
        for layer in s.b.layers { #expect(s.ollama.intact(layer.digest), "b's \(layer.digest.short)") }
        #expect(StoreCheck.problems(s.ollama.store).isEmpty)

        // A v2 link to a missing blob is named, and fails the run.
        let dangling = try s.ollama.rawLink("d", to: "../../../../blobs/sha256-" + String(repeating: "d", count: 64))
        let bad = try haul(["verify", "--all"], models: models.path)
        #expect(bad.status == 1)
        #expect(bad.stderr.contains("bad manifest: \(dangling): is a link to a missing blob"), "\(bad.stderr)")
        let named = try haul(["verify", "d"], models: models.path)
        #expect(named.status == 1 && named.stderr.contains("bad manifest: \(dangling)"), "\(named.stderr)")
    }

    /// The issue's silent update: a pull into a store with `manifests-v2/`
    /// must replace the v2 entry Ollama reads.
    @Test func aPullIntoAV2StoreReplacesTheEntryOllamaReads() throws {
        let dir = TempDir("haul-registry")
        let model = try TestModel.make(root: dir.path, name: "library/b:latest", layers: ["64K"], texts: ["system=new"])
        let registry = try TestRegistry(root: dir.path, cdn: false)
        let models = TempDir("haul-models")
        let ollama = try OllamaStore(models.path)
        let name = "\(registry.host)/library/b"
        let old = try ollama.image([(Self.model, "old b")])
        try ollama.linkV2(name, old.bytes)
        try ollama.legacy(name, old.bytes)

        let r = try haul(["pull", name, "--insecure", "-q"], models: models.path)
        #expect(r.status == 0, "\(r.stderr)")
        let entry = try ollama.v2Path(name)
        #expect(
            entry.contains("/manifests-v2/127.0.0.1%3A\(registry.host.split(separator: ":").last!)/library/b/latest"))
        #expect(
            try FileManager.default.destinationOfSymbolicLink(atPath: entry) == "../../../../blobs/"
                + Digest(hashing: model.manifestBytes).fileName)
        #expect(fileBytes(entry).map(Array.init) == model.manifestBytes)
        #expect(
            fileBytes(try ollama.legacyPath(name)).map(Array.init) == model.manifestBytes,
            "the legacy copy is the new version")
        #expect(StoreCheck.problems(ollama.store).isEmpty, "\(StoreCheck.problems(ollama.store))")
        // Young blobs of the old version are not pruned (the grace period).
        for layer in old.layers { #expect(ollama.intact(layer.digest)) }

        // Forced v1: the legacy file only, and the v2 entry gone so that
        // Ollama reads the legacy file rather than an older version.
        let v1 = try run(
            haulBinary, ["pull", name, "--insecure", "-q", "--store-layout", "v1"],
            environment: ["OLLAMA_MODELS": models.path])
        #expect(v1.status == 0, "\(v1.stderr)")
        #expect(!FileManager.default.fileExists(atPath: entry))
        #expect(fileBytes(try ollama.legacyPath(name)).map(Array.init) == model.manifestBytes)
        let wrong = try run(
            haulBinary, ["pull", name, "--insecure"],
            environment: ["OLLAMA_MODELS": models.path, "HAUL_STORE_LAYOUT": "v3"])
        #expect(wrong.status != 0 && wrong.stderr.contains("HAUL_STORE_LAYOUT=v3"), "\(wrong.stderr)")
    }

    @Test func theDaemonListsShowsServesAndDeletesListsAsOllamaDoes() async throws {
        let models = TempDir("haul-models")
        let logs = TempDir("haul-logs")
        let s = try Shared(models)
        let daemon = try await Daemon(models: models.path, logs: logs)

        let tags = try await daemon.request("GET", "/api/tags").json["models"] as? [[String: Any]] ?? []
        let rows = Dictionary(uniqueKeysWithValues: tags.map { ($0["name"] as? String ?? "", $0) })
        #expect(Set(rows.keys) == ["a:latest", "b:latest", "c:latest"])
        let c = try #require(rows["c:latest"])
        #expect(c["digest"] as? String == Digest(hashing: s.child.bytes).hex)
        #expect((c["details"] as? [String: Any])?["runner"] as? String == "llamacpp")
        #expect(
            (rows["a:latest"]?["details"] as? [String: Any])?["runner"] as? String == "ggml",
            "a GGUF model runs on ggml")

        let show = try await daemon.request("POST", "/api/show", body: #"{"model":"c"}"#)
        #expect(show.status == 200, "\(show.body.prefix(300))")
        #expect((show.json["details"] as? [String: Any])?["family"] as? String == "llama")

        // The node's registry API: a list to a client that accepts lists,
        // the child to one that does not; the child as a blob.
        let asList = try await daemon.request(
            "GET", "/v2/library/c/manifests/latest", headers: ["Accept": Self.listType])
        #expect(Array(asList.body.utf8) == s.list && asList.contentType == Self.listType)
        let plain = try await daemon.request("GET", "/v2/library/c/manifests/latest")
        #expect(Array(plain.body.utf8) == s.child.bytes)
        let childBlob = try await daemon.request(
            "GET", "/v2/library/c/blobs/" + Digest(hashing: s.child.bytes).description)
        #expect(childBlob.status == 200 && Array(childBlob.body.utf8) == s.child.bytes)

        let copied = try await daemon.request("POST", "/api/copy", body: #"{"source":"c","destination":"c2"}"#)
        #expect(copied.status == 200)
        let deleted = try await daemon.request("DELETE", "/api/delete", body: #"{"model":"c"}"#)
        #expect(deleted.status == 200)
        for digest in [Digest(hashing: s.list), Digest(hashing: s.child.bytes)] + s.child.layers.map(\.digest) {
            #expect(s.ollama.intact(digest), "c2 still names \(digest.short)")
        }
        _ = try await daemon.request("DELETE", "/api/delete", body: #"{"model":"c2"}"#)
        #expect(!FileManager.default.fileExists(atPath: s.ollama.store.blobPath(Digest(hashing: s.list))))
        #expect(!FileManager.default.fileExists(atPath: s.ollama.store.blobPath(s.child.layers[0].digest)))
        #expect(StoreCheck.problems(s.ollama.store).isEmpty)
    }

    @Test func exportOfAListTakesItsChildAndImportWritesV2() throws {
        let models = TempDir("haul-models")
        _ = try Shared(models)
        let out = TempDir("haul-out")
        let exported = try haul(["export", "c", "b", "-o", out.sub("layout")], models: models.path)
        #expect(exported.status == 0, "\(exported.stderr)")
        let fresh = TempDir("haul-fresh")
        let ollama = try OllamaStore(fresh.path)
        let imported = try haul(["import", out.sub("layout")], models: fresh.path)
        #expect(imported.status == 0, "\(imported.stderr)")
        #expect(Set(ollama.store.list().map(\.name.displayShortest)) == ["b:latest", "c:latest"])
        #expect(FileManager.default.fileExists(atPath: try ollama.v2Path("c")))
        #expect(StoreCheck.problems(ollama.store).isEmpty)
    }

    /// kill -9 at random moments of each write path (pull, rm, import):
    /// the store is consistent after every one.
    @Test func killedAnywhereTheStoreStaysConsistent() async throws {
        let dir = TempDir("haul-registry")
        _ = try TestModel.make(root: dir.path, name: "library/k:latest", layers: ["8M", "16K"], texts: ["system=k"])
        let registry = try TestRegistry(root: dir.path, cdn: false)
        let name = "\(registry.host)/library/k"
        let models = TempDir("haul-models")
        let ollama = try OllamaStore(models.path)
        let logs = TempDir("haul-logs")
        let exported = TempDir("haul-export")
        var kills = 0
        for round in 0..<24 {
            let arguments: [String]
            switch round % 3 {
            case 0: arguments = ["pull", name, "--insecure", "-q"]
            case 1: arguments = ["rm", name]
            default: arguments = ["import", exported.sub("k")]
            }
            if round % 3 == 2 && !FileManager.default.fileExists(atPath: exported.sub("k")) {
                _ = try haul(["pull", name, "--insecure", "-q"], models: models.path)
                #expect(try haul(["export", name, "-o", exported.sub("k")], models: models.path).status == 0)
            }
            let process = try BackgroundProcess(arguments, models: models.path, logs: logs)
            // Early in most runs (process start and the manifest take tens of
            // milliseconds), so most runs are killed somewhere mid-way.
            try await Task.sleep(for: .milliseconds(Int.random(in: 0...120)))
            if process.process.isRunning {
                process.send(SIGKILL)
                kills += 1
            }
            process.wait()
            let problems = StoreCheck.problems(ollama.store)
            #expect(problems.isEmpty, "round \(round) (\(arguments[0])): \(problems)")
        }
        #expect(kills > 0, "some runs were killed mid-way")
        // And the interrupted work completes when run again.
        #expect(try haul(["pull", name, "--insecure", "-q"], models: models.path).status == 0)
        #expect(ollama.store.list().count == 1 && StoreCheck.problems(ollama.store).isEmpty)
    }
}
