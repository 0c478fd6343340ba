import Foundation
import HaulTestSupport
import Testing

@testable import HaulKit

/// A pull under another spelling of a stored model updates that model, as
/// Ollama's PullHandler does after getExistingName: no second copy, and
/// the registry is asked under the stored spelling.
@Suite(.serialized) struct NameSpellingTests {
    @Test func aPullUnderAnotherSpellingUpdatesTheStoredModel() throws {
        let fixture = TempDir("haul-spelling")
        _ = try TestModel.make(root: fixture.path, name: "library/tiny:latest", layers: ["1M"])
        let registry = try TestRegistry(root: fixture.path, cdn: true)
        let models = TempDir("haul-models")
        let first = try run(
            haulBinary, ["pull", "\(registry.host)/library/tiny", "--insecure", "-q"],
            environment: ["OLLAMA_MODELS": models.path])
        try #require(first.status == 0, "\(first.stderr)")
        let again = try run(
            haulBinary, ["pull", "\(registry.host)/Library/TINY:Latest", "--insecure", "-q"],
            environment: ["OLLAMA_MODELS": models.path])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(
            ModelStore(root: models.path).list().map(\.name.displayShortest) == ["\(registry.host)/library/tiny:latest"]
        )
    }
}
