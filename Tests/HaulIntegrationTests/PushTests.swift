import Foundation
import HaulTestSupport
import Testing

@testable import HaulKit

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// `haul push` and `haul copy` into Debian's `docker-registry` (the CNCF
/// distribution registry): the manifest arrives byte for byte (its digest
/// is the source's), blobs the registry has are not sent again, its auth
/// and TLS work, and a push killed mid-blob goes on from what the registry
/// holds.
@Suite(.serialized) struct PushTests {
    static let fixture: (dir: TempDir, model: TestModel) = {
        let dir = TempDir("haul-push-fixture")
        let model = try! TestModel.make(
            root: dir.path, name: "library/tiny:latest", layers: ["40M", "300K"],
            texts: ["template={{ .Prompt }}"])
        return (dir, model)
    }()

    /// A store holding the fixture, as a pull leaves it.
    static func store() throws -> (TempDir, String) {
        let registry = try TestRegistry(root: fixture.dir.path, cdn: false)
        let models = TempDir("haul-models")
        let name = "\(registry.host)/library/tiny"
        let r = try haul(["pull", name, "--insecure", "-q"], models: models.path)
        try #require(r.status == 0, "\(r.stderr)")
        return (models, name)
    }

    static func skopeoRaw(_ reference: String, _ extra: [String] = ["--tls-verify=false"]) throws -> [UInt8] {
        let r = try run("/usr/bin/skopeo", ["inspect", "--raw"] + extra + ["docker://\(reference)"])
        #expect(r.status == 0, "\(r.stderr)")
        return Array(r.stdout.utf8)
    }

    @Test func aPushedModelReadsBackByteForByteAndIsNotSentTwice() async throws {
        let (models, name) = try Self.store()
        let destination = try await DockerRegistry()
        let target = "\(destination.host)/team/tiny:v1"
        let pushed = try haul(["push", name, target, "--insecure"], models: models.path)
        #expect(pushed.status == 0, "\(pushed.stderr)")
        #expect(
            pushed.stderr.contains("pushed \(Self.fixture.model.layers.first { $0.size == 40 << 20 }!.digest.short)"),
            "\(pushed.stderr)")
        // The destination's manifest is the source's bytes, so its digest is too.
        #expect(try Self.skopeoRaw(target) == Self.fixture.model.manifestBytes)
        // A fresh pull from the destination gets the same model.
        let fresh = TempDir("haul-models")
        let back = try haul(["pull", target, "--insecure", "-q"], models: fresh.path)
        #expect(back.status == 0, "\(back.stderr)")
        #expect(
            try ModelStore(root: fresh.path).manifest(for: ModelName(parsing: target))?.raw
                == Self.fixture.model.manifestBytes)
        #expect(StoreCheck.problems(ModelStore(root: fresh.path)).isEmpty)

        // Again, to another tag: every blob is there, nothing is sent.
        let again = try haul(
            ["push", name, "\(destination.host)/team/tiny:v2", "--insecure", "--json"], models: models.path)
        #expect(again.status == 0, "\(again.stderr)")
        let lines = again.stdout.split(separator: "\n").map(String.init)
        #expect(
            lines.first == #"{"status":"retrieving manifest"}"# && lines.last == #"{"status":"success"}"#,
            "\(again.stdout)")
        #expect(lines.contains(#"{"status":"pushing manifest"}"#))
        let quiet = try haul(["push", name, "\(destination.host)/team/tiny:v3", "--insecure"], models: models.path)
        #expect(quiet.stderr.contains("0 B sent"), "\(quiet.stderr)")
        #expect(try Self.skopeoRaw("\(destination.host)/team/tiny:v3") == Self.fixture.model.manifestBytes)

        // Another repository of the same registry: each blob is mounted
        // from the one it was pushed to, not sent.
        let mounted = try haul(["push", name, "\(destination.host)/other/tiny:v1", "--insecure"], models: models.path)
        #expect(mounted.status == 0 && mounted.stderr.contains("0 B sent"), "\(mounted.stderr)")
        for layer in Self.fixture.model.layers {
            #expect(mounted.stderr.contains("mounted from team/tiny \(layer.digest.short)"), "\(mounted.stderr)")
        }
        #expect(try Self.skopeoRaw("\(destination.host)/other/tiny:v1") == Self.fixture.model.manifestBytes)
    }

    /// htpasswd behind TLS: credentials from HAUL_REGISTRY_AUTH, the CA
    /// from --ca-file; without credentials, the error says how to give them
    /// and nothing is stored there.
    @Test func aRegistryWithPasswordsAndTLSTakesThePush() async throws {
        let (models, name) = try Self.store()
        let pki = try TestPKI()
        let destination = try await DockerRegistry(user: ("alice", "s3cret"), tls: pki)
        let target = "\(destination.host)/team/tiny:v1"
        let refused = try haul(["push", name, target, "--ca-file", pki.caCert], models: models.path)
        #expect(refused.status == 1 && refused.stderr.contains("authentication required"), "\(refused.stderr)")
        let pushed = try run(
            haulBinary, ["push", name, target, "--ca-file", pki.caCert],
            environment: ["OLLAMA_MODELS": models.path, "HAUL_REGISTRY_AUTH": "\(destination.host)=alice:s3cret"])
        #expect(pushed.status == 0, "\(pushed.stderr)")
        #expect(
            try Self.skopeoRaw(target, ["--tls-verify=false", "--creds", "alice:s3cret"])
                == Self.fixture.model.manifestBytes)
    }

    /// Registry to registry, through the store: every blob verified on the
    /// way in, the manifest unchanged on the way out.
    /// distribution with a token realm (`auth: token`, tokens it checks
    /// against the realm's certificate): the push asks the realm for
    /// `pull,push` on the destination, with the registry's credentials;
    /// a second repository gets the blobs by mount, whose token also needs
    /// `pull` on the first.
    @Test func aRegistryWithATokenRealmTakesThePushAndTheMount() async throws {
        let (models, name) = try Self.store()
        let pki = try TestPKI()
        let realm = try TokenRealm(user: "pusher:s3cret", tls: pki)
        let destination = try await DockerRegistry(tls: pki, tokenRealm: realm)
        let environment = ["OLLAMA_MODELS": models.path, "HAUL_REGISTRY_AUTH": "\(destination.host)=pusher:s3cret"]
        let refused = try haul(
            ["push", name, "\(destination.host)/team/tiny:v1", "--ca-file", pki.caCert], models: models.path)
        #expect(refused.status == 1, "\(refused.stderr)")
        for repository in ["team/tiny", "other/tiny"] {
            let r = try run(
                haulBinary, ["push", name, "\(destination.host)/\(repository):v1", "--ca-file", pki.caCert],
                environment: environment)
            #expect(r.status == 0, "\(repository): \(r.stderr)")
            if repository == "other/tiny" { #expect(r.stderr.contains("mounted from team/tiny"), "\(r.stderr)") }
        }
        let scopes = try realm.scopes()
        #expect(scopes.contains("repository:team/tiny:pull,push"), "\(scopes)")
        let back = try run(
            haulBinary, ["pull", "\(destination.host)/other/tiny:v1", "-q", "--ca-file", pki.caCert],
            environment: [
                "OLLAMA_MODELS": TempDir("haul-models").path, "HAUL_REGISTRY_AUTH": "\(destination.host)=pusher:s3cret"
            ])
        #expect(back.status == 0, "\(back.stderr)")
    }

    @Test func aCopyMovesAModelBetweenRegistries() async throws {
        let source = try TestRegistry(root: Self.fixture.dir.path, cdn: true)
        let destination = try await DockerRegistry()
        let models = TempDir("haul-models")
        let target = "\(destination.host)/mirror/tiny:latest"
        let copied = try haul(["copy", "\(source.host)/library/tiny", target, "--insecure"], models: models.path)
        #expect(copied.status == 0, "\(copied.stderr)")
        #expect(try Self.skopeoRaw(target) == Self.fixture.model.manifestBytes)
        // The round trip's other half: pulled into a fresh store, it is the
        // same manifest, and every blob checks.
        let fresh = TempDir("haul-models")
        let back = try haul(["pull", target, "--insecure", "-q"], models: fresh.path)
        #expect(back.status == 0, "\(back.stderr)")
        #expect(
            try ModelStore(root: fresh.path).manifest(for: ModelName(parsing: target))?.raw
                == Self.fixture.model.manifestBytes)
        let verified = try haul(["verify", "--all"], models: fresh.path)
        #expect(verified.status == 0, "\(verified.stdout) \(verified.stderr)")
    }

    /// An Ollama-style registry (token realm on its own host, Ollama's
    /// ed25519-signed token request): the push asks for a token for the
    /// upload's `pull,push` scope with the user's key, as a pull does.
    @Test func anOllamaStyleRegistryTakesASignedPush() async throws {
        let (models, name) = try Self.store()
        let root = TempDir("haul-push-destination")
        try FileManager.default.createDirectory(atPath: root.sub("blobs"), withIntermediateDirectories: true)
        let destination = try TestRegistry(root: root.path, cdn: false, tokenAuth: "ollama")
        let home = TempDir("haul-home")
        try FileManager.default.createDirectory(atPath: home.sub(".ollama"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: ollamaTestKeyPath, toPath: home.sub(".ollama/id_ed25519"))
        let target = "\(destination.host)/team/tiny:v1"
        let pushed = try run(
            haulBinary, ["push", name, target, "--insecure"],
            environment: ["OLLAMA_MODELS": models.path, "HOME": home.path])
        #expect(pushed.status == 0, "\(pushed.stderr)")
        #expect(try await destination.counter("token_requests") >= 1)
        #expect(
            try await destination.list("manifest_types") == ["application/vnd.docker.distribution.manifest.v2+json"])
        let anonymous = try run(
            haulBinary, ["push", name, "\(destination.host)/team/tiny:v2", "--insecure"],
            environment: ["OLLAMA_MODELS": models.path, "HOME": TempDir("haul-home").path])
        #expect(anonymous.status == 1 && anonymous.stderr.contains("refused"), "\(anonymous.stderr)")
    }

    /// `--all-tags`: every tag of the source repository (the registry's tag
    /// list), each under its own tag at the destination.
    @Test func aCopyOfAllTagsTakesEachTag() async throws {
        let (models, name) = try Self.store()
        let source = try await DockerRegistry()
        for tag in ["v1", "v2"] {
            let r = try haul(["push", name, "\(source.host)/team/tiny:\(tag)", "--insecure", "-q"], models: models.path)
            try #require(r.status == 0, "\(r.stderr)")
        }
        let destination = try await DockerRegistry()
        let copied = try haul(
            ["copy", "\(source.host)/team/tiny", "\(destination.host)/mirror/tiny", "--all-tags", "--insecure"],
            models: TempDir("haul-models").path)
        #expect(copied.status == 0, "\(copied.stderr)")
        for tag in ["v1", "v2"] {
            #expect(try Self.skopeoRaw("\(destination.host)/mirror/tiny:\(tag)") == Self.fixture.model.manifestBytes)
        }
    }

    /// kill -9 in the middle of a 512 MiB blob, then the same push again:
    /// it finishes, byte for byte, and leaves no session records. The
    /// distribution registry keeps the bytes of a chunk cut short, which
    /// makes the session it was in unusable (`_state` says one offset, the
    /// file holds more: BLOB_UPLOAD_INVALID), so the cut blob starts over:
    /// measured through a counting proxy, the registry receives the model
    /// plus what had arrived before the kill, never more.
    @Test(.timeLimit(.minutes(5))) func aKilledPushFinishesWhenRunAgain() async throws {
        let models = TempDir("haul-models")
        let model = try TestModel.make(
            root: models.path, name: "registry.ollama.ai/library/big:latest", layers: ["512M"])
        let destination = try await DockerRegistry()
        let logs = TempDir("haul-push-logs")
        let countFile = logs.sub("count")
        let port = freePort()
        let proxy = try BackgroundProcess(
            [
                testsDirectory.appendingPathComponent("registry/countingproxy.py").path,
                "--port", "\(port)", "--target", destination.host, "--count-file", countFile
            ],
            executable: "/usr/bin/python3", models: "", logs: logs)
        defer { proxy.send(SIGKILL) }
        #expect(try await waitForListener(port: port))
        func received() -> Int64 { Int64((try? String(contentsOfFile: countFile, encoding: .utf8)) ?? "") ?? 0 }
        let target = "127.0.0.1:\(port)/team/big:latest"
        let total = model.layers.reduce(0) { $0 + $1.size }
        let first = try BackgroundProcess(
            ["push", "big", target, "--insecure", "--json"], models: models.path, logs: logs)
        let midway = try await waitUntil(timeout: 120) { received() > total * 2 / 5 }
        first.send(SIGKILL)
        first.wait()
        try #require(midway, "the first push never got 40% through: \(first.stderr)")
        try await Task.sleep(for: .milliseconds(200))
        let beforeRerun = received()
        let second = try haul(["push", "big", target, "--insecure", "--json"], models: models.path)
        #expect(second.status == 0, "\(second.stderr)")
        try await Task.sleep(for: .milliseconds(200))
        #expect(
            received() <= beforeRerun + total + (1 << 20),
            "the rerun sent \(received() - beforeRerun) bytes for \(total)")
        #expect(try Self.skopeoRaw("\(destination.host)/team/big:latest") == model.manifestBytes)
        let records = (try? FileManager.default.contentsOfDirectory(atPath: models.sub(".haul/uploads"))) ?? []
        #expect(records.filter { $0.hasPrefix("upload-") }.isEmpty, "\(records)")
    }

    /// A registry that reports what it holds, a partial chunk included
    /// (as Zot does; the test registry plays it): a push killed mid-blob
    /// and run again sends only the rest, so the registry receives little
    /// more than the model once.
    @Test(.timeLimit(.minutes(5))) func aKilledPushResumesWhereTheRegistryStopped() async throws {
        let models = TempDir("haul-models")
        let model = try TestModel.make(
            root: models.path, name: "registry.ollama.ai/library/big:latest", layers: ["512M"])
        let root = TempDir("haul-push-destination")
        try FileManager.default.createDirectory(atPath: root.sub("blobs"), withIntermediateDirectories: true)
        let destination = try TestRegistry(root: root.path, cdn: false)
        let logs = TempDir("haul-push-logs")
        let target = "\(destination.host)/team/big:latest"
        let total = model.layers.reduce(0) { $0 + $1.size }
        let first = try BackgroundProcess(
            ["push", "big", target, "--insecure", "--json"], models: models.path, logs: logs)
        let midway = try await waitUntil(timeout: 120) {
            (try await destination.counter("upload_bytes")) > Int(total * 2 / 5)
        }
        first.send(SIGKILL)
        first.wait()
        try #require(midway, "the first push never got 40% through: \(first.stderr)")
        let partials = try haul(["partials"], models: models.path)
        #expect(partials.stdout.contains("(push to \(destination.host)/team/big)"), "\(partials.stdout)")
        let second = try haul(["push", "big", target, "--insecure", "--json"], models: models.path)
        #expect(second.status == 0, "\(second.stderr)")
        // The big blob's first report is where the registry was, not 0.
        let big = model.layers.max { $0.size < $1.size }!
        let firstReport =
            second.stdout.split(separator: "\n").first { $0.contains(big.digest.description) }.map(String.init) ?? ""
        #expect(
            firstReport.contains("\"completed\":") && !firstReport.hasSuffix("\"completed\":\(big.size)}"),
            "\(firstReport)")
        let received = try await destination.counter("upload_bytes")
        #expect(
            Double(received) <= 1.1 * Double(total), "the registry received \(received) bytes for a \(total)-byte model"
        )
        let fresh = TempDir("haul-models")
        let back = try haul(["pull", target, "--insecure", "-q"], models: fresh.path)
        #expect(back.status == 0, "\(back.stderr)")
        #expect(try ModelStore(root: fresh.path).manifest(for: ModelName(parsing: target))?.raw == model.manifestBytes)
    }

    /// `kill -9` of the daemon in the middle of an `/api/push`: a new daemon
    /// on the same store, asked again, goes on from what the registry
    /// holds (the journal is the store's, not the process's).
    @Test(.timeLimit(.minutes(5))) func aDaemonKilledMidPushGoesOnWhenAskedAgain() async throws {
        let models = TempDir("haul-models")
        let model = try TestModel.make(
            root: models.path, name: "registry.ollama.ai/library/big:latest", layers: ["512M"])
        let root = TempDir("haul-push-destination")
        try FileManager.default.createDirectory(atPath: root.sub("blobs"), withIntermediateDirectories: true)
        let destination = try TestRegistry(root: root.path, cdn: false)
        let target = "\(destination.host)/team/big:latest"
        let total = model.layers.reduce(0) { $0 + $1.size }
        let first = try await Daemon(models: models.path, logs: TempDir("haul-logs"))
        let copied = try await first.request("POST", "/api/copy", body: #"{"source":"big","destination":"\#(target)"}"#)
        try #require(copied.status == 200, "\(copied.body)")
        let body = #"{"model":"\#(target)","insecure":true}"#
        var request = URLRequest(url: URL(string: first.url + "/api/push")!)
        request.httpMethod = "POST"
        request.httpBody = Data(body.utf8)
        let pushing = Task { [request] in _ = try? await URLSession.shared.data(for: request) }
        let midway = try await waitUntil(timeout: 120) {
            (try await destination.counter("upload_bytes")) > Int(total * 2 / 5)
        }
        first.process.send(SIGKILL)
        first.process.wait()
        _ = await pushing.value
        try #require(midway, "the first push never got 40% through")

        let second = try await Daemon(models: models.path, logs: TempDir("haul-logs"))
        let reply = try await second.request("POST", "/api/push", body: body)
        #expect(reply.status == 200 && reply.lines.last?["status"] as? String == "success", "\(reply.body.suffix(500))")
        let big = model.layers.max { $0.size < $1.size }!
        let firstReport = reply.lines.first { $0["digest"] as? String == big.digest.description }
        #expect(
            (firstReport?["completed"] as? Int ?? 0) > 0,
            "the second daemon started the blob over: \(firstReport ?? [:])")
        let received = try await destination.counter("upload_bytes")
        #expect(
            Double(received) <= 1.1 * Double(total), "the registry received \(received) bytes for a \(total)-byte model"
        )
        let back = try haul(["pull", target, "--insecure", "-q"], models: TempDir("haul-models").path)
        #expect(back.status == 0, "\(back.stderr)")
    }

    /// A cut PATCH makes Haul ask the session where it is; a registry
    /// answering `Range: 0-9223372036854775807` there trapped Haul (and
    /// the daemon, and every rerun, from the journal). Now that session is
    /// no session: the blob starts over in a new one and the push ends
    /// verified.
    @Test func aSessionStatusBeyondAnyBlobStartsANewSession() async throws {
        let (models, name) = try Self.store()
        let root = TempDir("haul-push-destination")
        try FileManager.default.createDirectory(atPath: root.sub("blobs"), withIntermediateDirectories: true)
        let destination = try TestRegistry(root: root.path, cdn: false)
        try await destination.arm([
            ["kind": "cut", "target": "upload", "min_size": 16 << 20],
            ["kind": "range-huge", "target": "session-status", "times": 100]
        ])
        let target = "\(destination.host)/team/tiny:v1"
        let r = try haul(["push", name, target, "--insecure", "--chunk-size", "16M"], models: models.path)
        #expect(r.status == 0, "\(r.status): \(r.stderr)")
        let back = try haul(["pull", target, "--insecure", "-q"], models: TempDir("haul-models").path)
        #expect(back.status == 0, "\(back.stderr)")
    }

    /// Destinations that misbehave: each is retried to a verified result,
    /// or ends in one clear line naming the blob or the manifest.
    @Test func misbehavingDestinationsAreRetriedOrNamed() async throws {
        let (models, name) = try Self.store()
        let big = Self.fixture.model.layers.first { $0.size == 40 << 20 }!
        let cases: [(fault: [String: Any], ok: Bool, says: String)] = [
            (["kind": "cut", "target": "upload", "min_size": 16 << 20, "times": 2], true, ""),
            (["kind": "status", "status": 503, "target": "upload", "min_size": 16 << 20, "times": 2], true, ""),
            // The first POST of the push, twice.
            (["kind": "status", "status": 503, "target": "upload", "times": 2], true, ""),
            (
                ["kind": "range-lie", "target": "upload", "min_size": 16 << 20], false,
                "push \(big.digest.short): the registry says it holds"
            ),
            (["kind": "forget", "target": "upload", "min_size": 16 << 20, "times": 1000], false, "keeps none of them"),
            (["kind": "status", "status": 413, "target": "upload"], false, "too large (413)"),
            (["kind": "status", "status": 403, "target": "upload"], false, "may not allow pushing"),
            (["kind": "offsite", "target": "upload"], false, "not on its own host"),
            (
                ["kind": "rewrite", "target": "manifest-put"], false,
                "push manifest: the registry stored the manifest as sha256:"
            ),
            (["kind": "digest-lie", "target": "blob-put"], false, ": the registry stored it as sha256:"),
            // `last + 1` on Int64.max trapped (exit 132) before any check.
            (["kind": "range-huge", "target": "upload", "min_size": 16 << 20], false, "sent Range"),
            // Progress of one byte per chunk: bytes sent, not answers, end it.
            (
                ["kind": "one-byte", "target": "upload", "min_size": 1, "times": 100_000], false,
                "the registry keeps too little of each chunk"
            )
        ]
        for c in cases {
            let root = TempDir("haul-push-destination")
            try FileManager.default.createDirectory(atPath: root.sub("blobs"), withIntermediateDirectories: true)
            let destination = try TestRegistry(root: root.path, cdn: false)
            try await destination.arm([c.fault])
            let target = "\(destination.host)/team/tiny:v1"
            // 16 MiB chunks, so the 40 MB blob goes as PATCHes the faults can hit.
            let r = try haul(["push", name, target, "--insecure", "--chunk-size", "16M"], models: models.path)
            let kind = "\(c.fault["kind"]!) \(c.fault["status"] ?? "")"
            if c.ok {
                #expect(r.status == 0, "\(kind): \(r.stderr)")
                let received = try await destination.counter("upload_bytes")
                let total = Self.fixture.model.layers.reduce(0) { $0 + $1.size }
                #expect(Double(received) <= Double(total) + 3 * 16 * 1_048_576, "\(kind): received \(received)")
                let back = try haul(["pull", target, "--insecure", "-q"], models: TempDir("haul-models").path)
                #expect(back.status == 0, "\(kind): \(back.stderr)")
            } else {
                #expect(r.status == 1 && r.stderr.contains(c.says), "\(kind): \(r.stderr)")
                // No loop resends without bound: at most twice the model and a chunk.
                let received = try await destination.counter("upload_bytes")
                let total = Self.fixture.model.layers.reduce(0) { $0 + $1.size }
                #expect(received <= 2 * total + 16 << 20, "\(kind): received \(received) for \(total)")
                #expect(r.stderr.split(separator: "\n").count <= 6, "\(kind): one clear line, not a dump: \(r.stderr)")
            }
        }
        // The store is as it was: a push changes nothing local.
        #expect(StoreCheck.problems(ModelStore(root: models.path)).isEmpty)
        #expect(
            try ModelStore(root: models.path).manifest(for: ModelName(parsing: name))?.raw
                == Self.fixture.model.manifestBytes)
    }

    /// `/api/push` through the daemon, driven by Ollama's own Python
    /// client: a model copied under a name at another registry goes there
    /// in Ollama's vocabulary, and a missing model is the client's
    /// ResponseError after `couldn't retrieve manifest`.
    @Test func ollamasPythonClientPushesThroughTheDaemon() async throws {
        let python = try DaemonTests.python
        let (models, name) = try Self.store()
        let root = TempDir("haul-push-destination")
        try FileManager.default.createDirectory(atPath: root.sub("blobs"), withIntermediateDirectories: true)
        let destination = try TestRegistry(root: root.path, cdn: false)
        let daemon = try await Daemon(models: models.path, logs: TempDir("haul-logs"))
        let target = "\(destination.host)/team/tiny:v1"
        let copied = try await daemon.request(
            "POST", "/api/copy", body: #"{"source":"\#(name)","destination":"\#(target)"}"#)
        #expect(copied.status == 200, "\(copied.body)")
        let check = try run(
            python, [testsDirectory.appendingPathComponent("clients/ollama_push_check.py").path, daemon.url, target])
        #expect(check.status == 0, "\(check.stderr)")
        let seen = (try? JSONSerialization.jsonObject(with: Data(check.stdout.utf8))) as? [String: Any] ?? [:]
        let sent = Set(Self.fixture.model.layers.map(\.digest.description))
        #expect(Set(seen["digests"] as? [String] ?? []).isSuperset(of: sent), "\(check.stdout)")
        #expect((seen["missing"] as? String ?? "").contains("not found"), "\(check.stdout)")
        #expect(
            try await destination.list("manifest_types") == ["application/vnd.docker.distribution.manifest.v2+json"])
        let back = try haul(["pull", target, "--insecure", "-q"], models: TempDir("haul-models").path)
        #expect(back.status == 0, "\(back.stderr)")
        // Not streamed: only the last line.
        let quiet = try await daemon.request(
            "POST", "/api/push", body: #"{"model":"\#(target)","insecure":true,"stream":false}"#)
        #expect(quiet.status == 200 && quiet.body == #"{"status":"success"}"#, "\(quiet.body)")
        let nameless = try await daemon.request("POST", "/api/push", body: "{}")
        #expect(nameless.status == 400 && nameless.json["error"] as? String == "model is required")

        // A daemon whose operator listed no private registry pushes to none,
        // whatever its client says: the registry sees no request.
        let before = try await destination.counter("upload_bytes")
        let strict = try await Daemon(
            models: models.path, logs: TempDir("haul-logs"), environment: ["HAUL_ALLOW_PRIVATE": ""])
        let refused = try await strict.request(
            "POST", "/api/push", body: #"{"model":"\#(target)","insecure":true,"stream":false}"#)
        #expect(
            refused.status == 500 && (refused.json["error"] as? String ?? "").contains("refused"), "\(refused.body)")
        #expect(try await destination.counter("upload_bytes") == before)
    }

    /// A manifest list goes as stored: its children present here as blobs
    /// first, then the list's own bytes with its own type; pulled back from
    /// the destination it is the same list with the same runners.
    @Test func aManifestListIsPushedWithItsChildren() async throws {
        let f = ManifestListPullTests.fixture
        let source = try TestRegistry(root: f.dir.path, cdn: false)
        let models = TempDir("haul-models")
        _ = try OllamaStore(models.path)
        let name = "\(source.host)/library/tiny"
        for runner in ["llamacpp", "ggml"] {
            let r = try haul(["pull", name, "--insecure", "-q", "--runner", runner], models: models.path)
            try #require(r.status == 0, "\(r.stderr)")
        }
        let root = TempDir("haul-push-destination")
        try FileManager.default.createDirectory(atPath: root.sub("blobs"), withIntermediateDirectories: true)
        let destination = try TestRegistry(root: root.path, cdn: false)
        let target = "\(destination.host)/team/tiny:latest"
        let pushed = try haul(["push", name, target, "--insecure"], models: models.path)
        #expect(pushed.status == 0, "\(pushed.stderr)")
        #expect(try await destination.list("manifest_types") == [ManifestListPullTests.listType])
        for child in [f.llamacpp, f.ggml] {
            #expect(
                FileManager.default.fileExists(
                    atPath: root.sub("blobs/" + Digest(hashing: child.manifestBytes).fileName)))
        }
        let fresh = TempDir("haul-models")
        let back = try OllamaStore(fresh.path)
        for runner in ["llamacpp", "ggml"] {
            let r = try haul(["pull", target, "--insecure", "-q", "--runner", runner], models: fresh.path)
            #expect(r.status == 0, "\(r.stderr)")
        }
        #expect(try back.store.storedManifest(for: ModelName(parsing: target))?.raw == f.list)
        #expect(Set(back.store.list().map(\.runner)) == ["llamacpp", "ggml"])
    }
}
