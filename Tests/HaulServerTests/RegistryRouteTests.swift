import Foundation
import HaulKit
import HaulTestSupport
import Hummingbird
import HummingbirdTesting
import Testing

@testable import HaulServer

/// The daemon's read-only distribution API, in process, against a store the
/// test writes: what a registry client sees.
@Suite struct RegistryRouteTests {
    let models = TempDir("haul-registry-routes")
    var store: ModelStore { ModelStore(root: models.path) }

    func withDaemon(_ body: @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        try await HaulServerTests.withDaemon(store: store, body)
    }

    @Test func manifestsAndBlobsAsARegistryServesThem() async throws {
        let weights = String(repeating: "0123456789", count: 100)
        let digest = try StoredModel.write(
            "tiny", layers: [("application/vnd.ollama.image.model", weights)], into: store)
        let manifest = try #require(try store.manifest(for: ModelName(parsing: "tiny")))
        let blob = manifest.layers[0].digest
        try StoredModel.write(
            "example.com/team/other:v1", layers: [("application/vnd.ollama.image.model", "other")], into: store)
        try await withDaemon { client in
            let base = try await client.execute(uri: "/v2/", method: .get)
            #expect(base.status == .ok && base.headers[RegistryController.apiVersion.name] == "registry/2.0")

            let byTag = try await client.execute(uri: "/v2/library/tiny/manifests/latest", method: .get)
            #expect(byTag.status == .ok && Array(byTag.body.readableBytesView) == manifest.raw)
            #expect(byTag.headers[.contentType] == "application/vnd.docker.distribution.manifest.v2+json")
            #expect(byTag.headers[RegistryController.contentDigest] == digest.description)
            let byDigest = try await client.execute(
                uri: "/v2/library/tiny/manifests/\(digest)?ns=registry.ollama.ai", method: .head)
            #expect(
                byDigest.status == .ok && byDigest.body.readableBytes == 0
                    && byDigest.headers[.contentLength] == "\(manifest.raw.count)")

            let whole = try await client.execute(uri: "/v2/library/tiny/blobs/\(blob)", method: .get)
            #expect(whole.status == .ok && String(buffer: whole.body) == weights)
            let part = try await client.execute(
                uri: "/v2/library/tiny/blobs/\(blob)", method: .get, headers: [.range: "bytes=10-19"])
            #expect(part.status == .partialContent && String(buffer: part.body) == "0123456789")
            #expect(part.headers[.contentRange] == "bytes 10-19/1000")
            let tail = try await client.execute(
                uri: "/v2/library/tiny/blobs/\(blob)", method: .get, headers: [.range: "bytes=-5"])
            #expect(String(buffer: tail.body) == "56789")
            let beyond = try await client.execute(
                uri: "/v2/library/tiny/blobs/\(blob)", method: .get, headers: [.range: "bytes=1000-"])
            #expect(beyond.status == .rangeNotSatisfiable && beyond.headers[.contentRange] == "bytes */1000")

            // The other model's registry is named by ns.
            let other = try await client.execute(uri: "/v2/team/other/manifests/v1?ns=example.com", method: .get)
            #expect(other.status == .ok)
        }
    }

    /// (uri, status, error code): what is not the repository's is not served.
    static let misses: [(String, Int, String)] = [
        ("/v2/library/missing/manifests/latest", 404, "MANIFEST_UNKNOWN"),
        ("/v2/team/other/manifests/v1", 404, "MANIFEST_UNKNOWN"),  // not registry.ollama.ai's
        ("/v2/library/tiny/manifests/sha256:" + String(repeating: "0", count: 64), 404, "MANIFEST_UNKNOWN"),
        // A registry not served, and no pull-through.
        ("/v2/library/tiny/manifests/latest?ns=evil.example", 404, "NAME_UNKNOWN"),
        ("/v2/library/tiny/blobs/sha256:zz", 404, "BLOB_UNKNOWN"),
        ("/v2/library/..%2F..%2Fetc/manifests/passwd", 404, "NAME_UNKNOWN"),
        ("/v2/Library!/tiny/manifests/latest", 404, "NAME_UNKNOWN")
    ]

    @Test(arguments: misses)
    func missesAreRegistryErrors(uri: String, status: Int, code: String) async throws {
        try StoredModel.write("tiny", layers: [("application/vnd.ollama.image.model", "w")], into: store)
        try StoredModel.write(
            "example.com/team/other:v1", layers: [("application/vnd.ollama.image.model", "o")], into: store)
        try await withDaemon { client in
            let r = try await client.execute(uri: uri, method: .get)
            #expect(r.status.code == status)
            #expect(String(buffer: r.body).contains("\"code\":\"\(code)\""), "\(String(buffer: r.body))")
        }
    }

    @Test func aBlobOfAnotherRepositoryIsNotServed() async throws {
        try StoredModel.write("tiny", layers: [("application/vnd.ollama.image.model", "w")], into: store)
        try StoredModel.write(
            "example.com/team/other:v1", layers: [("application/vnd.ollama.image.model", "secret")], into: store)
        let secret = try #require(try store.manifest(for: ModelName(parsing: "example.com/team/other:v1"))).layers[0]
            .digest
        try await withDaemon { client in
            let r = try await client.execute(uri: "/v2/library/tiny/blobs/\(secret)", method: .get)
            #expect(r.status == .notFound)
            let own = try await client.execute(uri: "/v2/team/other/blobs/\(secret)?ns=example.com", method: .get)
            #expect(own.status == .ok && String(buffer: own.body) == "secret")
        }
    }

    @Test(arguments: [
        ("bytes=0-0", ByteRange.part(0...0)), ("bytes=5-", .part(5...9)), ("bytes=-3", .part(7...9)),
        ("bytes=8-100", .part(8...9)), ("bytes=10-", .unsatisfiable), ("bytes=0-1,4-5", .whole),
        ("items=0-1", .whole), ("bytes=3-1", .whole), ("bytes=-0", .unsatisfiable)
    ])
    func rangesAreReadAsRFC9110Says(header: String, expected: ByteRange) {
        #expect(ByteRange.parse(header, size: 10) == expected)
    }

    /// By default `/v2/` serves only the public registries' models: a model
    /// pulled from a private registry (perhaps with the operator's
    /// credentials) is unknown there, though stored. The operator widens it.
    @Test func onlyTheRegistriesTheOperatorChoseAreServed() async throws {
        try StoredModel.write("tiny", layers: [("application/vnd.ollama.image.model", "w")], into: store)
        try StoredModel.write(
            "private.example/team/secret:v1", layers: [("application/vnd.ollama.image.model", "s")], into: store)
        let secret = try #require(try store.manifest(for: ModelName(parsing: "private.example/team/secret:v1")))
        try await HaulServerTests.withDaemon(store: store, node: HaulDaemon.Node()) { client in
            let public_ = try await client.execute(uri: "/v2/library/tiny/manifests/latest", method: .get)
            #expect(public_.status == .ok)
            let manifest = try await client.execute(
                uri: "/v2/team/secret/manifests/v1?ns=private.example", method: .get)
            #expect(manifest.status == .notFound)
            let blob = try await client.execute(
                uri: "/v2/team/secret/blobs/\(secret.layers[0].digest)?ns=private.example", method: .get)
            #expect(blob.status == .notFound)
        }
        try await HaulServerTests.withDaemon(store: store, node: HaulDaemon.Node(registries: ["Private.Example"])) {
            client in
            let manifest = try await client.execute(
                uri: "/v2/team/secret/manifests/v1?ns=private.example", method: .get)
            #expect(manifest.status == .ok)
        }
        #expect(
            HaulDaemon.Node.fromEnvironment(["HAUL_SERVE_REGISTRIES": " a.example:5000, b.example "]).registries
                == Set(HaulDaemon.Node.publicRegistries + ["a.example:5000", "b.example"]))
    }

    /// With a node token, every `/v2/` request needs it (as a bearer token
    /// or a Basic password); Ollama's API is not affected.
    @Test func aNodeTokenGuardsTheRegistryAPI() async throws {
        try StoredModel.write("tiny", layers: [("application/vnd.ollama.image.model", "w")], into: store)
        try await HaulServerTests.withDaemon(store: store, node: HaulDaemon.Node(token: "s3cret")) { client in
            for uri in ["/v2/", "/v2/library/tiny/manifests/latest"] {
                let anonymous = try await client.execute(uri: uri, method: .get)
                #expect(
                    anonymous.status == .unauthorized && anonymous.headers[.wwwAuthenticate] == "Basic realm=\"haul\"")
                let wrong = try await client.execute(uri: uri, method: .get, headers: [.authorization: "Bearer s3cre"])
                #expect(wrong.status == .unauthorized)
                let bearer = try await client.execute(
                    uri: uri, method: .get, headers: [.authorization: "Bearer s3cret"])
                #expect(bearer.status == .ok)
                let basic = try await client.execute(
                    uri: uri, method: .get,
                    headers: [.authorization: "Basic " + Data("any:s3cret".utf8).base64EncodedString()])
                #expect(basic.status == .ok)
            }
            let tags = try await client.execute(uri: "/api/tags", method: .get)
            #expect(tags.status == .ok)
        }
    }
}
