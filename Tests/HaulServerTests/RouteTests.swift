import Foundation
import HaulKit
import HaulTestSupport
import Hummingbird
import HummingbirdTesting
import Testing
@testable import HaulServer

/// Every route of `haul serve` in process (HummingbirdTesting's router
/// framework: no socket, no spawned daemon), against a store the test
/// writes. Status codes and error texts are Ollama's (`server/routes.go`).
@Suite struct RouteTests {
    let models = TempDir("haul-routes")
    var store: ModelStore { ModelStore(root: models.path) }

    func withDaemon(_ body: @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        try await HaulServerTests.withDaemon(store: store, body)
    }

    static func json(_ buffer: ByteBuffer) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(buffer.readableBytesView))) as? [String: Any] ?? [:]
    }

    static func post(_ client: any TestClientProtocol, _ uri: String, _ body: String,
                     method: HTTPRequest.Method = .post, headers: HTTPFields = [:]) async throws -> TestResponse {
        try await client.execute(uri: uri, method: method, headers: headers, body: ByteBuffer(string: body))
    }

    @Test func rootAndVersionAnswerAsOllama() async throws {
        try await withDaemon { client in
            let root = try await client.execute(uri: "/", method: .get)
            #expect(root.status == .ok && String(buffer: root.body) == "Ollama is running")
            let version = try await client.execute(uri: "/api/version", method: .get)
            #expect(version.headers[.contentType] == "application/json; charset=utf-8")
            #expect(Self.json(version.body)["version"] as? String == Versions.ollamaAPI)
        }
    }

    @Test func tagsShowAndDeleteAStoredModel() async throws {
        let digest = try StoredModel.write("example.com/team/tiny:v1", layers: [
            ("application/vnd.ollama.image.model", "weights"),
            ("application/vnd.ollama.image.template", "{{ .Prompt }}"),
        ], into: store)
        try await withDaemon { client in
            let tags = try await client.execute(uri: "/api/tags", method: .get)
            // Slashes as Go writes them, not "example.com\/team".
            #expect(String(buffer: tags.body).contains(#""name":"example.com/team/tiny:v1""#))
            let listed = try #require((Self.json(tags.body)["models"] as? [[String: Any]])?.first)
            #expect(listed["digest"] as? String == digest.hex)
            #expect((listed["details"] as? [String: Any])?["family"] as? String == "llama")

            let show = try await Self.post(client, "/api/show", #"{"model":"example.com/team/tiny:v1"}"#)
            #expect(show.status == .ok)
            #expect(Self.json(show.body)["template"] as? String == "{{ .Prompt }}")

            let deleted = try await Self.post(client, "/api/delete", #"{"model":"example.com/team/tiny:v1"}"#, method: .delete)
            #expect(deleted.status == .ok && deleted.body.readableBytes == 0)
            let after = try await client.execute(uri: "/api/tags", method: .get)
            #expect(String(buffer: after.body) == #"{"models":[]}"#)
        }
        #expect(!FileManager.default.fileExists(atPath: store.blobPath(digest)))
    }

    /// (route, body, status, error text): Ollama's words for each refusal.
    static let refusals: [(String, String, Int, String)] = [
        ("/api/show", #"{"model":"missing"}"#, 404, "model 'missing' not found"),
        ("/api/delete", #"{"model":"missing"}"#, 404, "model 'missing' not found"),
        ("/api/show", "", 400, "missing request body"),
        ("/api/show", "{", 400, "invalid request body: malformed JSON"),
        ("/api/show", #"{"model":5}"#, 400, #"invalid request body: "model" must be a string"#),
        ("/api/show", #"{"model":"a b"}"#, 400, #"name "a b" is invalid"#),
        ("/api/pull", #"{"model":"bad name!"}"#, 400, "invalid model name"),
        ("/api/pull", #"{"model":"x","stream":"yes"}"#, 400, #"invalid request body: "stream" must be a boolean"#),
        ("/api/show", "{\"model\":\"" + String(repeating: "a", count: 70_000) + "\"}", 413,
         "request body too large (limit 65536 bytes)"),
    ]

    @Test(arguments: refusals)
    func refusalsAreOllamasStatusAndText(route: String, body: String, status: Int, message: String) async throws {
        try await withDaemon { client in
            let method: HTTPRequest.Method = route == "/api/delete" ? .delete : .post
            let r = try await Self.post(client, route, body, method: method)
            #expect(r.status.code == status)
            #expect(Self.json(r.body)["error"] as? String == message)
            #expect(r.headers[.contentType] == "application/json; charset=utf-8")
        }
    }

    @Test func aPageOnAnotherSiteIsRefusedAndAnAllowedOneReadsEvenErrors() async throws {
        try await withDaemon { client in
            let evil = try await client.execute(uri: "/api/tags", method: .get, headers: [.origin: "https://evil.example"])
            #expect(evil.status == .forbidden)
            let pull = try await Self.post(client, "/api/pull", #"{"model":"tiny"}"#, headers: [.origin: "https://evil.example"])
            #expect(pull.status == .forbidden)

            let local: HTTPFields = [.origin: "http://localhost:3000"]
            let ok = try await client.execute(uri: "/api/tags", method: .get, headers: local)
            #expect(ok.status == .ok && ok.headers[.accessControlAllowOrigin] == "http://localhost:3000")
            let missing = try await Self.post(client, "/api/show", #"{"model":"missing"}"#, headers: local)
            #expect(missing.status == .notFound)
            #expect(missing.headers[.accessControlAllowOrigin] == "http://localhost:3000", "the page can read why")

            var preflight = local
            preflight[.accessControlRequestMethod] = "POST"
            let options = try await client.execute(uri: "/api/pull", method: .options, headers: preflight)
            #expect(options.status == .noContent)
            #expect(options.headers[.accessControlAllowMethods]?.contains("POST") == true)
        }
    }
}
