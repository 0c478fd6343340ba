import Foundation
import HaulTestSupport
import Testing

@testable import HaulKit

/// Random stores of both layouts (shared layers, lists, hard links and
/// copies, corrupt entries), and random sequences of pull, rm, copy, prune
/// and verify run by two processes at once (a `haul` CLI and a `haul
/// serve`). Afterwards every name that resolved before, and every name a
/// copy or pull made, still resolves unless something removed it, and
/// every blob it uses is there and hashes right.
@Suite(.serialized) struct SharedStorePropertyTests {
    /// SplitMix64: a seed gives the same store and the same operations.
    struct Seeded: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    static let modelType = "application/vnd.ollama.image.model"

    @Test func twoProcessesOnARandomSharedStoreNeverLoseANamedModel() async throws {
        let dir = TempDir("haul-registry")
        let base = try TestModel.make(root: dir.path, name: "library/m0:latest", layers: ["32K"], texts: ["system=m0"])
        try FileManager.default.createDirectory(
            atPath: dir.sub("manifests/library/m1"), withIntermediateDirectories: true)
        _ = try TestModel.copyTag(base, to: "library/m1:latest", root: dir.path)
        _ = try TestModel.make(root: dir.path, name: "library/m2:latest", layers: ["16K"], texts: ["system=shared"])
        let registry = try TestRegistry(root: dir.path, cdn: false)
        let remote = (0..<3).map { "\(registry.host)/library/m\($0):latest" }

        for seed in UInt64(1)...6 {
            var rng = Seeded(state: seed)
            let models = TempDir("haul-models")
            let logs = TempDir("haul-logs")
            let ollama = try OllamaStore(models.path, v2: Bool.random(using: &rng))
            var local: [String] = []
            var corrupt = Set<String>()
            let pool = ["w1", "w2", "w3", "w4"]
            for i in 0..<8 {
                let name = i < 2 ? remote[i] : "s\(i)"
                let weights = pool.randomElement(using: &rng)!
                let image = try ollama.image([
                    (Self.modelType, weights), ("application/vnd.ollama.image.system", "\(seed)-\(i)")
                ])
                switch Int.random(in: 0..<6, using: &rng) {
                case 0: try ollama.legacy(name, image.bytes)
                case 1: try ollama.linkV2(name, image.bytes, as: .hardLink)
                case 2: try ollama.linkV2(name, image.bytes, as: .copy)
                case 3:
                    let other = try ollama.image([(Self.modelType, pool.randomElement(using: &rng)!)])
                    let list = try ollama.list([
                        .reference(manifest: image.bytes, runner: "llamacpp", stored: true),
                        .reference(manifest: other.bytes, runner: "ggml", stored: Bool.random(using: &rng))
                    ])
                    try ollama.linkV2(name, list)
                case 4:
                    // Corrupt: a link whose blob was changed under it.
                    let path = try ollama.linkV2(name, image.bytes)
                    try Data(image.bytes + Array(" ".utf8)).write(
                        to: URL(fileURLWithPath: ollama.store.blobPath(Digest(hashing: image.bytes))))
                    corrupt.insert(path)
                default: try ollama.linkV2(name, image.bytes)
                }
                if Bool.random(using: &rng), i >= 2 { try ollama.legacy(name, image.bytes) }
                local.append(name)
            }
            // Every blob old enough to prune.
            let past = Date().addingTimeInterval(-2 * 3600)
            for file in FileSystem.listDirectory(ollama.store.blobsDirectory) {
                try FileManager.default.setAttributes(
                    [.modificationDate: past], ofItemAtPath: ollama.store.blobPath(Digest(ollamaSpelling: file)!))
            }
            let before = Set(ollama.store.list().filter { Self.intact($0, ollama) }.map(\.name))
            #expect(before.count >= 3, "seed \(seed): a store worth testing")

            // The CLI's sequence and the daemon's, at once.
            var cli: [[String]] = []
            var api: [(String, String, String)] = []
            var removed = Set<String>()
            for _ in 0..<6 {
                switch Int.random(in: 0..<4, using: &rng) {
                case 0:
                    let victim = (local + remote).randomElement(using: &rng)!
                    removed.insert(victim)
                    cli.append(["rm", victim])
                case 1: cli.append(["pull", remote.randomElement(using: &rng)!, "--insecure", "-q"])
                case 2: cli.append(["verify", "--all"])
                default: cli.append(["list"])
                }
                switch Int.random(in: 0..<3, using: &rng) {
                case 0:
                    let source = local.randomElement(using: &rng)!
                    api.append(("POST", "/api/copy", #"{"source":"\#(source)","destination":"copy\#(api.count)"}"#))
                case 1:
                    let victim = (local + remote).randomElement(using: &rng)!
                    removed.insert(victim)
                    api.append(("DELETE", "/api/delete", #"{"model":"\#(victim)"}"#))
                default:
                    api.append(
                        ("POST", "/api/pull", #"{"model":"\#(remote.randomElement(using: &rng)!)","insecure":true}"#))
                }
            }
            let daemon = try await Daemon(models: models.path, logs: logs)
            let path = models.path
            let sequence = cli
            let cliRun = Task.detached { @Sendable in
                for arguments in sequence { _ = try? run(haulBinary, arguments, environment: ["OLLAMA_MODELS": path]) }
            }
            var made = Set<String>()
            for (method, route, body) in api {
                let reply = try await daemon.request(method, route, body: body)
                if route == "/api/copy", reply.status == 200,
                    let destination = body.firstMatch(of: /"destination":"(\w+)"/)
                {
                    made.insert(String(destination.1))
                }
                if route == "/api/pull", reply.status == 200, reply.lines.last?["status"] as? String == "success",
                    let pulled = body.firstMatch(of: /"model":"([^"]+)"/)
                {
                    made.insert(String(pulled.1))
                }
            }
            await cliRun.value
            _ = daemon.stop()

            let expected = before.union(try made.map { try ModelName(parsing: $0).storeIdentity })
                .subtracting(try removed.map { try ModelName(parsing: $0).storeIdentity })
            for name in expected {
                guard let model = try? ollama.store.model(name) else {
                    Issue.record("seed \(seed): \(name.displayShortest) no longer resolves; ops cli=\(cli) api=\(api)")
                    continue
                }
                #expect(
                    Self.intact(model, ollama),
                    "seed \(seed): \(name.displayShortest) lost a blob; ops cli=\(cli) api=\(api)")
            }
            let problems = StoreCheck.problems(ollama.store, allowUnreadable: corrupt)
            #expect(problems.isEmpty, "seed \(seed): \(problems)")
        }
    }

    static func intact(_ model: LocalModel, _ ollama: OllamaStore) -> Bool {
        (((try? model.manifest.blobs) ?? []) + model.manifestBlobs).allSatisfy { ollama.intact($0.digest) }
    }
}
