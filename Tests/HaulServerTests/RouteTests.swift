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

    static func post(
        _ client: any TestClientProtocol, _ uri: String, _ body: String,
        method: HTTPRequest.Method = .post, headers: HTTPFields = [:]
    ) async throws -> TestResponse {
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
        let digest = try StoredModel.write(
            "example.com/team/tiny:v1",
            layers: [
                ("application/vnd.ollama.image.model", "weights"),
                ("application/vnd.ollama.image.template", "{{ .Prompt }}")
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

            let deleted = try await Self.post(
                client, "/api/delete", #"{"model":"example.com/team/tiny:v1"}"#, method: .delete)
            #expect(deleted.status == .ok && deleted.body.readableBytes == 0)
            let after = try await client.execute(uri: "/api/tags", method: .get)
            #expect(String(buffer: after.body) == #"{"models":[]}"#)
        }
        #expect(!FileManager.default.fileExists(atPath: store.blobPath(digest)))
    }

    /// Weights that claim to be GGUF and are not: a clear 500, as Ollama's
    /// `GetModelInfo` fails, never a partial answer. The same model lists,
    /// without capabilities.
    @Test func showRefusesAHostileGGUFClearly() async throws {
        let lying = "GGUF\u{3}\0\0\0" + String(repeating: "\u{7f}", count: 16)
        _ = try StoredModel.write("lying", layers: [("application/vnd.ollama.image.model", lying)], into: store)
        try await withDaemon { client in
            let show = try await Self.post(client, "/api/show", #"{"model":"lying"}"#)
            #expect(show.status == .internalServerError)
            #expect(
                Self.json(show.body)["error"] as? String
                    == "invalid GGUF: key/value count 9187201950435737471 does not fit the file")
            let tags = try await client.execute(uri: "/api/tags", method: .get)
            let listed = try #require((Self.json(tags.body)["models"] as? [[String: Any]])?.first)
            #expect(listed["name"] as? String == "lying:latest" && listed["capabilities"] == nil)
        }
    }

    /// (route, body, status, error text): Ollama's words for each refusal
    /// (`server/routes.go`: `ShowHandler`, `DeleteHandler`, `PullHandler`,
    /// `CopyHandler`; `types/errtypes`).
    static let refusals: [(String, String, Int, String)] = [
        ("/api/show", #"{"model":"missing"}"#, 404, "model 'missing' not found"),
        ("/api/show", #"{"model":"Missing:Tag"}"#, 404, "model 'Missing:Tag' not found"),
        ("/api/show", "{}", 400, "model is required"),
        ("/api/delete", "{}", 400, "model is required"),
        ("/api/pull", "{}", 400, "invalid model name"),
        ("/api/copy", #"{"source":"missing","destination":"x"}"#, 404, #"model "missing" not found"#),
        ("/api/copy", #"{"source":"a b","destination":"x"}"#, 400, #"source "a b" is invalid"#),
        ("/api/copy", #"{"source":"x","destination":"a b"}"#, 400, #"destination "a b" is invalid"#),
        (
            "/api/pull", #"{"model":"gpt-oss:20b-cloud"}"#, 400,
            #""gpt-oss:20b-cloud" is an Ollama cloud model: it runs on ollama.com and has no weights to pull (pull a local tag, without -cloud)"#
        ),
        (
            "/api/pull", #"{"model":"gpt-oss:20b:cloud"}"#, 400,
            #""gpt-oss:20b:cloud" is an Ollama cloud model: it runs on ollama.com and has no weights to pull (pull a local tag, without -cloud)"#
        ),
        ("/api/delete", #"{"model":"missing"}"#, 404, "model 'missing' not found"),
        ("/api/show", "", 400, "missing request body"),
        ("/api/show", "{", 400, "invalid request body: malformed JSON"),
        ("/api/show", #"{"model":5}"#, 400, #"invalid request body: "model" must be a string"#),
        ("/api/show", #"{"model":"a b"}"#, 400, #"name "a b" is invalid"#),
        ("/api/pull", #"{"model":"bad name!"}"#, 400, "invalid model name"),
        ("/api/pull", #"{"model":"x","stream":"yes"}"#, 400, #"invalid request body: "stream" must be a boolean"#),
        (
            "/api/show", "{\"model\":\"" + String(repeating: "a", count: 70_000) + "\"}", 413,
            "request body too large (limit 65536 bytes)"
        )
    ]

    @Test(arguments: refusals)
    func refusalsAreOllamasStatusAndText(route: String, body: String, status: Int, message: String) async throws {
        try await withDaemon { client in
            let method: HTTPRequest.Method = route == "/api/delete" ? .delete : .post
            if route == "/api/copy" {
                _ = try StoredModel.write("x", layers: [("application/vnd.ollama.image.model", "w")], into: store)
            }
            let r = try await Self.post(client, route, body, method: method)
            #expect(r.status.code == status)
            #expect(Self.json(r.body)["error"] as? String == message)
            #expect(r.headers[.contentType] == "application/json; charset=utf-8")
        }
    }

    @Test func aPageOnAnotherSiteIsRefusedAndAnAllowedOneReadsEvenErrors() async throws {
        try await withDaemon { client in
            let evil = try await client.execute(
                uri: "/api/tags", method: .get, headers: [.origin: "https://evil.example"])
            #expect(evil.status == .forbidden)
            let pull = try await Self.post(
                client, "/api/pull", #"{"model":"tiny"}"#, headers: [.origin: "https://evil.example"])
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
