import Foundation
import HaulKit
import HaulTestSupport
import Hummingbird
import HummingbirdTesting
import Testing

@testable import HaulServer

/// Routes Ollama's clients read beside /api/pull, answered as Ollama's
/// `server/routes.go` (`CopyHandler`, `HeadBlobHandler`, `PsHandler`) and
/// `openai/openai.go` (`ToListCompletion`, `ToModel`) answer them.
@Suite struct ParityRouteTests {
    let models = TempDir("haul-parity-routes")
    var store: ModelStore { ModelStore(root: models.path) }

    static func json(_ buffer: ByteBuffer) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(buffer.readableBytesView))) as? [String: Any] ?? [:]
    }

    @Test func copyWritesASecondManifestAndNoBlob() async throws {
        try StoredModel.write("tiny", layers: [("application/vnd.ollama.image.model", "weights")], into: store)
        let blobs = try FileManager.default.contentsOfDirectory(atPath: store.blobsDirectory).sorted()
        try await withDaemon(store: store) { client in
            let ok = try await client.execute(
                uri: "/api/copy", method: .post,
                body: ByteBuffer(string: #"{"source":"tiny","destination":"team/tiny-copy:v1"}"#))
            #expect(ok.status == .ok && ok.body.readableBytes == 0)
            let missing = try await client.execute(
                uri: "/api/copy", method: .post,
                body: ByteBuffer(string: #"{"source":"nothere","destination":"x"}"#))
            #expect(
                missing.status == .notFound
                    && Self.json(missing.body)["error"] as? String == #"model "nothere" not found"#)
            let badSource = try await client.execute(
                uri: "/api/copy", method: .post,
                body: ByteBuffer(string: #"{"source":"a b","destination":"x"}"#))
            #expect(
                badSource.status == .badRequest
                    && Self.json(badSource.body)["error"] as? String == #"source "a b" is invalid"#)
            let badDestination = try await client.execute(
                uri: "/api/copy", method: .post,
                body: ByteBuffer(string: #"{"source":"tiny","destination":"x:y:z"}"#))
            #expect(Self.json(badDestination.body)["error"] as? String == #"destination "x:y:z" is invalid"#)
        }
        let copy = try #require(try store.manifest(for: ModelName(parsing: "team/tiny-copy:v1")))
        #expect(copy.raw == (try store.manifest(for: ModelName(parsing: "tiny")))?.raw)
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: store.blobsDirectory).sorted() == blobs,
            "no blob copied")
    }

    @Test func blobsAreFoundByEitherDigestFormAndBadDigestsAre400() async throws {
        try StoredModel.write("tiny", layers: [("application/vnd.ollama.image.model", "weights")], into: store)
        let digest = try #require(try store.manifest(for: ModelName(parsing: "tiny"))).layers[0].digest
        try await withDaemon(store: store) { client in
            let absent = "sha256:" + String(repeating: "0", count: 64)
            for (uri, status) in [
                ("/api/blobs/\(digest)", HTTPResponse.Status.ok), ("/api/blobs/sha256-\(digest.hex)", .ok),
                ("/api/blobs/\(absent)", .notFound), ("/api/blobs/sha256:xyz", .badRequest)
            ] {
                let r = try await client.execute(uri: uri, method: .head)
                #expect(r.status == status, "\(uri)")
            }
        }
    }

    @Test func psIsEmptyAndOpenAIListsModelsAsOllamaDoes() async throws {
        try await withDaemon(store: store) { client in
            let ps = try await client.execute(uri: "/api/ps", method: .get)
            #expect(String(buffer: ps.body) == #"{"models":[]}"#)
            // An empty list is Go's nil slice: null.
            let none = try await client.execute(uri: "/v1/models", method: .get)
            #expect(String(buffer: none.body) == #"{"object":"list","data":null}"#)
        }
        try StoredModel.write("tiny", layers: [("application/vnd.ollama.image.model", "weights")], into: store)
        try StoredModel.write(
            "example.com/team/big:v2", layers: [("application/vnd.ollama.image.model", "w")], into: store)
        try await withDaemon(store: store) { client in
            let list = try await client.execute(uri: "/v1/models", method: .get)
            let data = try #require(Self.json(list.body)["data"] as? [[String: Any]])
            #expect(Set(data.compactMap { $0["id"] as? String }) == ["tiny:latest", "example.com/team/big:v2"])
            #expect(data.allSatisfy { $0["object"] as? String == "model" && $0["created"] is Int })
            #expect(Set(data.compactMap { $0["owned_by"] as? String }) == ["library", "team"])
            let one = try await client.execute(uri: "/v1/models/tiny:latest", method: .get)
            #expect(
                Self.json(one.body)["id"] as? String == "tiny:latest"
                    && Self.json(one.body)["owned_by"] as? String == "library")
            let missing = try await client.execute(uri: "/v1/models/nothere", method: .get)
            #expect(missing.status == .notFound)
            #expect(
                String(buffer: missing.body)
                    == #"{"error":{"message":"model 'nothere' not found","type":"api_error","param":null,"code":null}}"#
            )
        }
    }

    @Test func showAndDeleteFindAModelUnderAnotherSpelling() async throws {
        try StoredModel.write("tiny", layers: [("application/vnd.ollama.image.model", "weights")], into: store)
        try await withDaemon(store: store) { client in
            let show = try await client.execute(
                uri: "/api/show", method: .post, body: ByteBuffer(string: #"{"model":"Library/TINY:Latest"}"#))
            #expect(show.status == .ok)
            let one = try await client.execute(uri: "/v1/models/Tiny", method: .get)
            #expect(one.status == .ok && Self.json(one.body)["id"] as? String == "Tiny")
            let delete = try await client.execute(
                uri: "/api/delete", method: .delete, body: ByteBuffer(string: #"{"model":"TINY"}"#))
            #expect(delete.status == .ok)
        }
        #expect(store.list().isEmpty)
    }
}
