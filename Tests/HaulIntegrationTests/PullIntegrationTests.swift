import Foundation
import HaulTestSupport
import Testing

@testable import HaulKit

/// End-to-end pulls against the test registry on loopback. Serialized: each
/// test moves hundreds of MiB and they would only fight for two cores.
@Suite(.serialized) struct PullIntegrationTests {
    /// One registry directory with the models every test pulls, generated once.
    static let fixture: (dir: TempDir, big: TestModel, small: TestModel, sixteen: TestModel) = {
        let dir = TempDir("haul-registry")
        let big = try! TestModel.make(
            root: dir.path, name: "library/big:latest",
            layers: [
                "256M", "2K:application/vnd.ollama.image.template", "100:application/vnd.ollama.image.params"
            ])
        let small = try! TestModel.make(
            root: dir.path, name: "team/small:v1", layers: ["3M", "1K:application/vnd.ollama.image.license"])
        let sixteen = try! TestModel.make(root: dir.path, name: "library/sixteen:latest", layers: ["16M"])
        return (dir, big, small, sixteen)
    }()

    /// Checks the stored model is exactly what the registry has.
    func expectStored(_ model: TestModel, name: String, in models: String) throws {
        let store = ModelStore(root: models)
        let stored = try #require(store.list().first { $0.name == (try? ModelName(parsing: name)) })
        #expect(Array(fileBytes(store.manifestPath(stored.name)) ?? Data()) == model.manifestBytes)
        for layer in model.layers {
            let source = Self.fixture.dir.path + "/blobs/" + layer.digest.fileName
            #expect(filesEqual(store.blobPath(layer.digest), source), "\(layer.digest) differs")
        }
        // Nothing left behind but the data itself.
        #expect(FileSystem.listDirectory(store.partialsDirectory).isEmpty)
    }

    @Test func cliPullsAMultiLayerModelThroughACDNRedirect() async throws {
        let registry = try TestRegistry(root: Self.fixture.dir.path, cdn: true)
        let models = TempDir("haul-models")
        let name = "\(registry.host)/library/big"
        let r = try haul(["pull", name, "--insecure", "--json"], models: models.path)
        #expect(r.status == 0, "\(r.stderr)")
        try expectStored(Self.fixture.big, name: name, in: models.path)

        // The stream is /api/pull's: JSON objects in Ollama's order, plus
        // Haul's own line per blob saying which host it came from.
        let lines = r.stdout.split(separator: "\n").map(String.init)
        let all = try lines.map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        let sources = all.filter { $0["status"] as? String == "source" }
        #expect(sources.count == Self.fixture.big.layers.count)
        #expect(sources.allSatisfy { $0["host"] as? String == registry.host })
        let objects = all.filter { $0["status"] as? String != "source" }
        let statuses = objects.compactMap { $0["status"] as? String }
        #expect(statuses.first == "pulling manifest")
        #expect(Array(statuses.suffix(3)) == ["verifying sha256 digest", "writing manifest", "success"])
        for layer in Self.fixture.big.layers {
            let mine = objects.filter { $0["digest"] as? String == layer.digest.description }
            #expect(
                mine.allSatisfy {
                    $0["status"] as? String == "pulling \(layer.digest.short)" && $0["total"] as? Int == Int(layer.size)
                })
            let completed = mine.map { $0["completed"] as? Int ?? 0 }
            #expect(completed == completed.sorted(), "progress went backwards")
            #expect(completed.last == Int(layer.size))
        }
        // Every blob went through the CDN; none was fetched twice over.
        for layer in Self.fixture.big.layers {
            let served = try await registry.bytesServed(layer.digest)
            #expect(
                served >= Int(layer.size) && served <= Int(Double(layer.size) * 1.25) + 65536,
                "\(served) bytes for \(layer.size)")
        }
        #expect(try haul(["list"], models: models.path).stdout.contains("\(registry.host)/library/big:latest"))
    }

    /// More connections than pieces: the idle ones wait for a rate before
    /// taking over part of a range, so no response is aborted blind and the
    /// blob is sent about once (it was sent twice: 17 requests for 4 pieces).
    @Test func idleConnectionsDoNotFetchASmallBlobTwice() async throws {
        let model = Self.fixture.sixteen
        let registry = try TestRegistry(root: Self.fixture.dir.path)
        let models = TempDir("haul-models")
        let r = try haul(
            ["pull", "\(registry.host)/\(model.name)", "--insecure", "--connections", "16"], models: models.path)
        #expect(r.status == 0, "\(r.stderr)")
        try expectStored(model, name: "\(registry.host)/\(model.name)", in: models.path)
        let blob = model.layers[0]
        let served = try await registry.bytesServed(blob.digest)
        #expect(Double(served) <= Double(blob.size) * 1.25, "\(served) bytes sent for \(blob.size)")
    }

    @Test func libraryPullFromARegistryThatServesBlobsItself() async throws {
        let registry = try TestRegistry(root: Self.fixture.dir.path, cdn: false)
        let models = TempDir("haul-models")
        let haul = Haul(store: ModelStore(root: models.path))
        let (events, error) = await collect(haul.pull("\(registry.host)/team/small:v1", insecure: true))
        #expect(error == nil, "\(String(describing: error))")
        try expectStored(Self.fixture.small, name: "\(registry.host)/team/small:v1", in: models.path)

        #expect(events.first == .pullingManifest)
        guard case .plan(let plan) = events.dropFirst().first else {
            Issue.record("no plan event")
            return
        }
        #expect(plan.totalBytes == Self.fixture.small.layers.reduce(0) { $0 + $1.size })
        #expect(plan.cached.isEmpty)
        #expect(Array(events.suffix(3)) == [.verifying, .writingManifest, .success])
        var last: [Digest: (Int64, Int64)] = [:]
        for case .progress(let p) in events {
            let (c, h) = last[p.digest] ?? (0, 0)
            #expect(p.completed >= c && p.hashed >= h && p.hashed <= p.completed)
            last[p.digest] = (p.completed, p.hashed)
        }
        #expect(last.count == Self.fixture.small.layers.count)
        #expect(last.values.allSatisfy { $0.0 == $0.1 })
    }

    @Test func aSecondPullIsACacheHit() async throws {
        let registry = try TestRegistry(root: Self.fixture.dir.path, cdn: true)
        let models = TempDir("haul-models")
        let name = "\(registry.host)/team/small:v1"
        #expect(try haul(["pull", name, "--insecure", "--quiet"], models: models.path).status == 0)
        let before = try await registry.stats()["blob_requests"] as? [String: Int]
        let again = try haul(["pull", name, "--insecure", "--json"], models: models.path)
        #expect(again.status == 0)
        #expect(try await registry.stats()["blob_requests"] as? [String: Int] == before)
        #expect(again.stdout.contains(#""completed":3145728"#))
    }

    @Test func unknownModelsAndBadNamesFailWithOllamasTexts() throws {
        let registry = try TestRegistry(root: Self.fixture.dir.path, cdn: true)
        let models = TempDir("haul-models")
        let missing = try haul(["pull", "\(registry.host)/library/nope", "--insecure"], models: models.path)
        #expect(missing.status != 0)
        #expect(missing.stderr.contains("Error: pull model manifest: file does not exist"))
        let bad = try haul(["pull", "a/b/c/d", "--insecure"], models: models.path)
        #expect(bad.status != 0)
        #expect(bad.stderr.contains("Error: invalid model name"))
        let json = try haul(["pull", "\(registry.host)/library/nope", "--insecure", "--json"], models: models.path)
        #expect(json.stdout.hasSuffix(#"{"error":"pull model manifest: file does not exist"}"# + "\n"))
        #expect(listFiles(models.path).filter { $0.hasPrefix("manifests") }.isEmpty)
    }

    @Test func aServerThatIgnoresRangeStillYieldsAVerifiedBlob() async throws {
        let registry = try TestRegistry(root: Self.fixture.dir.path, cdn: true)
        try await registry.arm([["kind": "ignore-range", "times": 1000]])
        let models = TempDir("haul-models")
        let name = "\(registry.host)/team/small:v1"
        let r = try haul(["pull", name, "--insecure", "--quiet", "--connections", "4"], models: models.path)
        #expect(r.status == 0, "\(r.stderr)")
        try expectStored(Self.fixture.small, name: name, in: models.path)
    }

    @Test func wrongContentRangeAnd503AreRetried() async throws {
        let registry = try TestRegistry(root: Self.fixture.dir.path, cdn: true)
        try await registry.arm([
            ["kind": "wrong-content-range", "shift": 4096, "times": 2],
            ["kind": "status", "status": 503, "times": 2]
        ])
        let models = TempDir("haul-models")
        let name = "\(registry.host)/team/small:v1"
        let r = try haul(["pull", name, "--insecure", "--quiet"], models: models.path)
        #expect(r.status == 0, "\(r.stderr)")
        try expectStored(Self.fixture.small, name: name, in: models.path)
    }

    @Test func corruptedBytesNeverReachTheFinalName() async throws {
        let registry = try TestRegistry(root: Self.fixture.dir.path, cdn: true)
        // Every answer for the 3 MB layer is corrupted: the download and its
        // one fresh retry both mismatch.
        try await registry.arm([["kind": "corrupt", "fraction": 0.3, "times": 1000, "min_size": 1 << 20]])
        let models = TempDir("haul-models")
        let r = try haul(
            ["pull", "\(registry.host)/team/small:v1", "--insecure", "--connections", "1"], models: models.path)
        #expect(r.status != 0)
        #expect(r.stderr.contains("Error: digest mismatch, file must be downloaded again: want sha256:"))
        // Blobs that did verify are kept (no lost work); every file under a
        // final name holds exactly the bytes its name promises.
        let store = ModelStore(root: models.path)
        let stored = FileSystem.listDirectory(store.blobsDirectory)
        #expect(stored.count < Self.fixture.small.layers.count)
        for file in stored {
            let bytes = Array(fileBytes(store.blobsDirectory + "/" + file) ?? Data())
            #expect("sha256-" + Digest(bytes: SHA256.hash(bytes)).hex == file)
        }
        #expect(listFiles(models.path).filter { $0.hasPrefix("manifests") }.isEmpty)

        // Corrupted once (a glitch, or bytes that changed mid-blob): the
        // fresh retry gets the true bytes.
        try await registry.arm([["kind": "corrupt", "fraction": 0.3, "times": 1, "min_size": 1 << 20]])
        let again = try haul(
            ["pull", "\(registry.host)/team/small:v1", "--insecure", "--connections", "1"], models: models.path)
        #expect(again.status == 0, "\(again.stderr)")
        try expectStored(Self.fixture.small, name: "\(registry.host)/team/small:v1", in: models.path)
    }

    /// One connection in the CDN runs at a tenth of the others' rate; the
    /// pull must still finish close to the time it takes without it.
    @Test func aSlowConnectionDoesNotHoldUpTheTail() async throws {
        func timedPull(slow: Int?) throws -> Double {
            let registry = try TestRegistry(
                root: Self.fixture.dir.path, cdn: true, rate: "8M", slowConnection: slow, slowFactor: 10)
            let models = TempDir("haul-models")
            let r = try haul(
                ["pull", "\(registry.host)/library/big", "--insecure", "--quiet", "--connections", "8"],
                models: models.path)
            #expect(r.status == 0, "\(r.stderr)")
            return r.seconds
        }
        let baseline = try timedPull(slow: nil)
        let withSlow = try timedPull(slow: 2)
        #expect(withSlow <= baseline * 1.25, "slow connection: \(withSlow)s vs \(baseline)s without")
    }

    /// Ollama's post-pull pruning: a new version of a tag deletes the blobs
    /// only the old version used; blobs another model uses stay;
    /// OLLAMA_NOPRUNE turns it off; and a blob younger than an hour is
    /// never pruned (another process may be about to name it).
    @Test func aNewVersionOfATagPrunesTheBlobsOnlyTheOldOneUsed() async throws {
        for (noPrune, aged) in [(false, true), (true, true), (false, false)] {
            let dir = TempDir("haul-registry")
            let old = try TestModel.make(
                root: dir.path, name: "library/evolving:latest", layers: ["2M"], texts: ["system=old"])
            let keeper = try TestModel.make(
                root: dir.path, name: "library/keeper:latest", layers: ["1M"], texts: ["system=old"])
            let registry = try TestRegistry(root: dir.path, cdn: false)
            let models = TempDir("haul-models")
            let env = ["OLLAMA_MODELS": models.path].merging(noPrune ? ["OLLAMA_NOPRUNE": "1"] : [:]) { a, _ in a }
            for model in ["evolving", "keeper"] {
                #expect(
                    try run(
                        haulBinary, ["pull", "\(registry.host)/library/\(model)", "--insecure", "-q"], environment: env
                    ).status == 0)
            }
            if aged {
                let past = Date().addingTimeInterval(-2 * 3600)
                for name in FileSystem.listDirectory(models.path + "/blobs") {
                    try FileManager.default.setAttributes(
                        [.modificationDate: past], ofItemAtPath: models.path + "/blobs/" + name)
                }
            }
            let new = try TestModel.make(
                root: dir.path, name: "library/evolving:latest", layers: ["3M"], texts: ["system=new"])
            let r = try run(
                haulBinary, ["pull", "\(registry.host)/library/evolving", "--insecure", "--json"], environment: env)
            #expect(r.status == 0, "\(r.stderr)")
            let store = ModelStore(root: models.path)
            let onlyOld = Set(old.layers.map(\.digest)).subtracting(new.layers.map(\.digest)).subtracting(
                keeper.layers.map(\.digest))
            #expect(!onlyOld.isEmpty)
            for digest in onlyOld {
                #expect(
                    FileSystem.exists(store.blobPath(digest)) == (noPrune || !aged),
                    "\(digest.short) noPrune=\(noPrune) aged=\(aged)")
            }
            // The "system=old" layer is shared with keeper and stays either way.
            let shared = Set(old.layers.map(\.digest)).intersection(keeper.layers.map(\.digest))
            #expect(!shared.isEmpty && shared.allSatisfy { FileSystem.exists(store.blobPath($0)) })
            for layer in new.layers { #expect(FileSystem.exists(store.blobPath(layer.digest))) }
            let statuses = r.stdout.split(separator: "\n").compactMap {
                (try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["status"] as? String
            }
            let expected =
                noPrune
                ? ["verifying sha256 digest", "writing manifest", "success"]
                : ["verifying sha256 digest", "writing manifest", "removing unused layers", "success"]
            #expect(Array(statuses.suffix(expected.count)) == expected)
        }
    }

    @Test func pullsFromAnIPv6LiteralHost() async throws {
        let registry = try TestRegistry(root: Self.fixture.dir.path, cdn: true, ipv6: true)
        let models = TempDir("haul-models")
        let name = "\(registry.host)/team/small:v1"
        let r = try haul(["pull", name, "--insecure"], models: models.path)
        #expect(r.status == 0, "\(r.stderr)")
        try expectStored(Self.fixture.small, name: name, in: models.path)
        #expect(FileSystem.exists(models.path + "/manifests/\(registry.host)/team/small/v1"))
    }
}
