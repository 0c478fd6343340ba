import Foundation
import HaulTestSupport
import Testing

@testable import HaulKit

/// Names are matched against the store without regard to case, as
/// Ollama's `getExistingName` does: never a second copy of a model.
@Suite struct CaseInsensitiveNamesTests {
    @Test func anotherSpellingFindsUpdatesAndRemovesTheStoredModel() throws {
        let dir = TempDir("haul-case")
        let store = ModelStore(root: dir.path)
        try StoredModel.write("library/tiny:latest", layers: [("application/vnd.ollama.image.model", "w")], into: store)
        let shouted = try ModelName(parsing: "Library/TINY:Latest")
        #expect(store.existingName(shouted) == (try ModelName(parsing: "library/tiny:latest")))
        let manifest = try #require(try store.manifest(for: shouted))
        #expect(try store.model(shouted).name.displayShortest == "tiny:latest")
        try store.writeManifest(manifest, for: shouted)
        #expect(store.list().map(\.name.displayShortest) == ["tiny:latest"], "no second copy")
        #expect(store.existingName(try ModelName(parsing: "other")) == nil)
        try store.remove(try ModelName(parsing: "TINY"))
        #expect(store.list().isEmpty)
    }
}
