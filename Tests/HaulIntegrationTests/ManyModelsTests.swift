import Foundation
import HaulTestSupport
import Testing

@testable import HaulKit

/// `haul pull a b c` and `haul pull -f FILE`: concurrent pulls on one
/// engine, common layers downloaded once, a summary naming each failure.
@Suite(.serialized) struct ManyModelsTests {
    @Test func severalModelsAtOnceShareTheirCommonLayers() async throws {
        let fixture = TempDir("haul-many-fixture")
        let base = try TestModel.make(root: fixture.path, name: "library/base:latest", layers: ["16M", "1K"])
        try FileManager.default.createDirectory(
            atPath: fixture.sub("manifests/library/sibling"), withIntermediateDirectories: true)
        let sibling = try TestModel.copyTag(base, to: "library/sibling:latest", root: fixture.path)
        _ = try TestModel.make(root: fixture.path, name: "library/other:v1", layers: ["3M"])
        let registry = try TestRegistry(root: fixture.path, cdn: true)
        let list = TempDir("haul-list")
        try """
        # the team's models
        \(registry.host)/library/other:v1   # a comment after a name
        \(registry.host)/library/base

        """.write(toFile: list.sub("models.txt"), atomically: true, encoding: .utf8)
        let models = TempDir("haul-models")
        // One connection: no range is split, so bytes served say exactly
        // how often each blob was downloaded.
        let r = try run(
            haulBinary,
            [
                "pull", "\(registry.host)/\(sibling)", "--insecure", "--json", "--connections", "1",
                "-f", list.sub("models.txt")
            ],
            environment: ["OLLAMA_MODELS": models.path])
        #expect(r.status == 0, "\(r.stderr)")
        let names = Set(ModelStore(root: models.path).list().map(\.name.displayShortest))
        #expect(
            names == [
                "\(registry.host)/library/sibling:latest", "\(registry.host)/library/other:v1",
                "\(registry.host)/library/base:latest"
            ])
        // The shared 16 MB layer was downloaded once for both models.
        let shared = base.layers.first { $0.size == 16 << 20 }!
        let served = try await registry.bytesServed(shared.digest)
        #expect(served == Int(shared.size), "served \(served) of \(shared.size)")
        // Each JSON line says which model it is about.
        let lines = r.stdout.split(separator: "\n").compactMap {
            (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any]
        }
        #expect(lines.allSatisfy { $0["model"] is String })
        #expect(lines.filter { $0["status"] as? String == "success" }.count == 3)
    }

    @Test func oneFailureFailsTheRunAndIsNamedWhileTheOthersLand() async throws {
        let fixture = TempDir("haul-many-fixture")
        _ = try TestModel.make(root: fixture.path, name: "library/good:latest", layers: ["2M"])
        let registry = try TestRegistry(root: fixture.path, cdn: true)
        let models = TempDir("haul-models")
        let r = try run(
            haulBinary, ["pull", "\(registry.host)/library/good", "\(registry.host)/library/missing", "--insecure"],
            environment: ["OLLAMA_MODELS": models.path])
        #expect(r.status == 1)
        #expect(
            r.stderr.contains(
                "Error: 1 of 2 models failed:\n  \(registry.host)/library/missing: pull model manifest: file does not exist"
            ),
            "\(r.stderr)")
        #expect(ModelStore(root: models.path).list().map(\.name.model) == ["good"])
    }

    @Test func aBadNameInAListIsRefusedByLineBeforeAnythingStarts() throws {
        let list = TempDir("haul-list")
        try "llama3.2\n\nbad name!\n".write(toFile: list.sub("models.txt"), atomically: true, encoding: .utf8)
        let models = TempDir("haul-models")
        let r = try run(haulBinary, ["pull", "-f", list.sub("models.txt")], environment: ["OLLAMA_MODELS": models.path])
        #expect(r.status == 1)
        #expect(r.stderr == "Error: \(list.sub("models.txt")):3: invalid model name \"bad name!\"\n", "\(r.stderr)")
        #expect(listFiles(models.path).isEmpty)
        let missing = try run(
            haulBinary, ["pull", "-f", list.sub("nope.txt")], environment: ["OLLAMA_MODELS": models.path])
        #expect(
            missing.status == 1 && missing.stderr.hasPrefix("Error: cannot read \(list.sub("nope.txt"))"),
            "\(missing.stderr)")
        let none = try run(haulBinary, ["pull"], environment: ["OLLAMA_MODELS": models.path])
        #expect(none.status != 0 && none.stderr.contains("name a model to pull"))
    }
}
