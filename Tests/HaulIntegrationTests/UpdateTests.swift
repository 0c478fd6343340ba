import Foundation
import HaulTestSupport
import Testing

@testable import HaulKit

/// `haul list --outdated` and `haul pull --all` against the test registry:
/// a moved tag is found by HEAD, an unreachable registry is said per model,
/// and an update moves only the layers that changed.
@Suite(.serialized) struct UpdateTests {
    @Test func outdatedModelsAreFoundAndUpdatedMovingOnlyWhatChanged() async throws {
        let fixture = TempDir("haul-update-fixture")
        let a = try TestModel.make(root: fixture.path, name: "library/a:latest", layers: ["2M"])
        _ = try TestModel.make(root: fixture.path, name: "library/b:latest", layers: ["1M"])
        let registry = try TestRegistry(root: fixture.path, cdn: true)
        let gone = try TestRegistry(root: fixture.path, cdn: true)
        let models = TempDir("haul-models")
        let env = ["OLLAMA_MODELS": models.path]
        for name in ["\(registry.host)/library/a", "\(registry.host)/library/b", "\(gone.host)/library/b"] {
            let r = try run(haulBinary, ["pull", name, "--insecure", "-q"], environment: env)
            try #require(r.status == 0, "\(r.stderr)")
        }
        gone.stop()
        // The registry moves a's tag on: one new layer beside the old one.
        _ = try TestModel.copyTag(a, to: "library/a:latest", root: fixture.path)
        let before = try await registry.bytesServed(a.layers[0].digest)

        let list = try run(haulBinary, ["list", "--outdated", "--insecure"], environment: env)
        #expect(list.status == 0, "\(list.stderr)")
        func row(_ name: String, in text: String) -> String {
            text.split(separator: "\n").first { $0.hasPrefix(name + " ") }.map(String.init) ?? ""
        }
        #expect(row("\(registry.host)/library/a:latest", in: list.stdout).hasSuffix("outdated"), "\(list.stdout)")
        #expect(row("\(registry.host)/library/b:latest", in: list.stdout).hasSuffix("up to date"), "\(list.stdout)")
        #expect(row("\(gone.host)/library/b:latest", in: list.stdout).contains("unreachable: "), "\(list.stdout)")
        #expect(try await registry.counter("manifest_requests") == 2 + 2, "one HEAD per reachable model")

        let update = try run(haulBinary, ["pull", "--all", "--insecure", "-q"], environment: env)
        #expect(update.status == 1, "the gone registry's model fails, and says so")
        #expect(
            update.stderr.contains("Error: 1 of 3 models failed:\n  \(gone.host)/library/b:latest: "),
            "\(update.stderr)")
        #expect(try await registry.bytesServed(a.layers[0].digest) == before, "the unchanged layer did not move")
        let after = try run(haulBinary, ["list", "--outdated", "--insecure"], environment: env)
        #expect(row("\(registry.host)/library/a:latest", in: after.stdout).hasSuffix("up to date"), "\(after.stdout)")
    }
}
