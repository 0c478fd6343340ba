import Foundation
import HaulTestSupport
import Testing

@testable import HaulKit

/// What `ModelFacts` remembers per blob: each question about a blob has its
/// own answer, and nothing is remembered about a blob that is missing.
struct ModelFactsTests {
    @Test func oneBlobAsAConfigHereAndATemplateThereGetsBothAnswers() throws {
        let dir = TempDir()
        let store = ModelStore(root: dir.path)
        // Valid JSON that is also a template reading .Tools.
        let both = #"{"model_family":"llama","note":"{{ .Tools }}"}"#
        try StoredModel.write("a", layers: [], into: store, config: both)
        try StoredModel.write("b", layers: [("application/vnd.ollama.image.template", both)], into: store)
        let facts = ModelFacts()
        let models = Dictionary(uniqueKeysWithValues: store.list().map { ($0.name.model, $0) })
        #expect(facts.summary(of: models["a"]!, in: store).details.family == "llama")
        #expect(facts.summary(of: models["b"]!, in: store).capabilities == ["tools"])
    }

    @Test func aMissingBlobIsAskedAgainOnceItIsBack() throws {
        let dir = TempDir()
        let store = ModelStore(root: dir.path)
        try StoredModel.write("c", layers: [("application/vnd.ollama.image.template", "{{ .Suffix }}")], into: store)
        let model = try #require(store.list().first)
        let template = try #require(model.manifest.layers.first)
        let saved = try Data(contentsOf: URL(fileURLWithPath: store.blobPath(template.digest)))
        try FileManager.default.removeItem(atPath: store.blobPath(template.digest))  // as haul verify quarantines it
        let facts = ModelFacts()
        #expect(facts.summary(of: model, in: store).capabilities == [])
        try saved.write(to: URL(fileURLWithPath: store.blobPath(template.digest)))  // repaired
        #expect(facts.summary(of: model, in: store).capabilities == ["insert"])
    }
}
