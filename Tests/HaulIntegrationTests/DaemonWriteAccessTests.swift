import Foundation
import HaulTestSupport
import Testing

@testable import HaulKit

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Who may change a daemon's models or send them to a registry. A client
/// without `HAUL_NODE_TOKEN` overwrote `team/prod:latest` in the operator's
/// registry with `/api/copy` then `/api/push`, signed with the operator's
/// `HAUL_REGISTRY_AUTH`. Now every route that writes the store or sends to
/// a registry needs the token when one is set, and a push to a registry the
/// daemon holds credentials for needs the operator's `HAUL_PUSH_REGISTRIES`.
/// The destination is Debian's `docker-registry` with htpasswd.
@Suite(.serialized) struct DaemonWriteAccessTests {
    @Test(.timeLimit(.minutes(5))) func noClientUsesTheOperatorsCredentialsWithoutConsent() async throws {
        let registry = try await DockerRegistry(user: ("operator", "s3cret"))
        let credentials = "\(registry.host)=operator:s3cret"
        let prod = "\(registry.host)/team/prod:latest"
        // The operator's production model, pushed by the operator.
        let models = TempDir("haul-models")
        let store = ModelStore(root: models.path)
        try StoredModel.write(
            "example.com/team/good:latest", layers: [("application/vnd.ollama.image.model", "good weights")],
            into: store)
        try StoredModel.write(
            "example.com/evil/model:latest", layers: [("application/vnd.ollama.image.model", "evil weights")],
            into: store)
        let pushed = try run(
            haulBinary, ["push", "example.com/team/good", prod, "--insecure"],
            environment: ["OLLAMA_MODELS": models.path, "HAUL_REGISTRY_AUTH": credentials])
        try #require(pushed.status == 0, "\(pushed.stderr)")
        let before = try PushTests.skopeoRaw(prod, ["--tls-verify=false", "--creds", "operator:s3cret"])

        let daemon = try await Daemon(
            models: models.path, logs: TempDir("haul-logs"),
            environment: ["HAUL_NODE_TOKEN": "SECRET", "HAUL_REGISTRY_AUTH": credentials])
        let copy = #"{"source":"example.com/evil/model","destination":"\#(prod)"}"#
        let push = #"{"model":"\#(prod)","insecure":true,"stream":false}"#
        // Without the token: every write is refused, every read answered.
        for (method, path, body) in [
            ("POST", "/api/copy", copy), ("POST", "/api/push", push),
            ("POST", "/api/pull", #"{"model":"\#(prod)","insecure":true,"stream":false}"#),
            ("DELETE", "/api/delete", #"{"model":"example.com/team/good"}"#)
        ] {
            let reply = try await daemon.request(method, path, body: body)
            #expect(reply.status == 401, "\(method) \(path): \(reply.status) \(reply.body)")
            let wrong = try await daemon.request(method, path, body: body, headers: ["Authorization": "Bearer WRONG"])
            #expect(wrong.status == 401, "\(method) \(path) with a wrong token: \(wrong.status)")
        }
        #expect(try await daemon.request("GET", "/api/tags").status == 200)
        #expect(
            try await daemon.request("POST", "/api/show", body: #"{"model":"example.com/team/good"}"#).status == 200)
        #expect(store.list().count == 2, "nothing was copied or deleted")

        // With the token: the copy is the client's own business, the push
        // with the operator's credentials is not.
        let token = ["Authorization": "Bearer SECRET"]
        #expect(try await daemon.request("POST", "/api/copy", body: copy, headers: token).status == 200)
        let refused = try await daemon.request("POST", "/api/push", body: push, headers: token)
        #expect(refused.status == 403 && refused.body.contains("HAUL_PUSH_REGISTRIES"), "\(refused.body)")
        #expect(try PushTests.skopeoRaw(prod, ["--tls-verify=false", "--creds", "operator:s3cret"]) == before)
        // Basic authentication's password is the token too (hosts.toml, HAUL_REGISTRY_AUTH).
        let basic = ["Authorization": "Basic " + Data("any:SECRET".utf8).base64EncodedString()]
        #expect(
            try await daemon.request("DELETE", "/api/delete", body: #"{"model":"\#(prod)"}"#, headers: basic).status
                == 200)
        _ = daemon.stop()

        // The operator allows pushing there: the token's holder may.
        let allowed = try await Daemon(
            models: models.path, logs: TempDir("haul-logs"),
            environment: [
                "HAUL_NODE_TOKEN": "SECRET", "HAUL_REGISTRY_AUTH": credentials,
                "HAUL_PUSH_REGISTRIES": "http://\(registry.host)"
            ])
        #expect(
            try await allowed.request(
                "POST", "/api/copy", body: #"{"source":"example.com/team/good","destination":"\#(prod)"}"#,
                headers: token
            ).status == 200)
        let ok = try await allowed.request("POST", "/api/push", body: push, headers: token)
        #expect(ok.status == 200 && ok.body.contains("success"), "\(ok.body)")
        _ = allowed.stop()
    }

    /// With no token and no credentials for the destination, Ollama's
    /// behaviour on loopback is kept: a client copies and pushes.
    @Test func withoutATokenOrCredentialsAClientPushesAsWithOllama() async throws {
        let registry = try await DockerRegistry()
        let models = TempDir("haul-models")
        try StoredModel.write(
            "example.com/team/good:latest", layers: [("application/vnd.ollama.image.model", "good weights")],
            into: ModelStore(root: models.path))
        let daemon = try await Daemon(models: models.path, logs: TempDir("haul-logs"))
        let target = "\(registry.host)/team/good:v1"
        #expect(
            try await daemon.request(
                "POST", "/api/copy", body: #"{"source":"example.com/team/good","destination":"\#(target)"}"#
            ).status == 200)
        let pushed = try await daemon.request(
            "POST", "/api/push", body: #"{"model":"\#(target)","insecure":true,"stream":false}"#)
        #expect(pushed.status == 200 && pushed.body.contains("success"), "\(pushed.body)")
        _ = daemon.stop()
    }
}
