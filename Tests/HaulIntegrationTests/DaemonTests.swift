import Foundation
import HaulTestSupport
import Testing

@testable import HaulKit

/// `haul serve` over real HTTP: Ollama's API surface, shared downloads,
/// disconnects, shutdown, and Ollama's own Python client. Serialized: the
/// pulls would only fight for two cores.
@Suite(.serialized) struct DaemonTests {
    static let fixture: (dir: TempDir, model: TestModel, shared: TestModel, other: TestModel) = {
        let dir = TempDir("haul-daemon-registry")
        let model = try! TestModel.make(
            root: dir.path, name: "library/chat:latest", layers: ["24M"],
            texts: [
                "template={{ if .System }}{{ .System }}{{ end }}{{ .Prompt }}{{ if .Tools }}tools{{ end }}",
                "system=You are terse.",
                #"params={"stop":["<|end|>","<|user|>"],"temperature":0.7,"num_ctx":4096}"#,
                "license=MIT, for the test."
            ])
        let shared = try! TestModel.make(root: dir.path, name: "library/shared:latest", layers: ["128M", "1M"])
        let other = try! TestModel.make(root: dir.path, name: "library/other:latest", layers: ["96M"])
        return (dir, model, shared, other)
    }()

    @Test func answersOllamasProbesAndRefusesBadRequestsWithoutFalling() async throws {
        let models = TempDir("haul-models")
        let logs = TempDir("haul-logs")
        let daemon = try await Daemon(models: models.path, logs: logs)

        let root = try await daemon.request("GET", "/")
        #expect(root.status == 200 && root.body == "Ollama is running")
        let head = try await daemon.request("HEAD", "/")
        #expect(head.status == 200 && head.body.isEmpty)
        let version = try await daemon.request("GET", "/api/version")
        #expect(version.json["version"] as? String == Versions.ollamaAPI)
        #expect(try await daemon.request("GET", "/api/tags").body == #"{"models":[]}"#)

        // Ollama's 400s, before any streaming: status, JSON body, message.
        let refusals: [(String, Int, String)] = [
            ("", 400, "missing request body"),
            ("{}", 400, "invalid model name"),
            (#"{"model":"../../etc/passwd"}"#, 400, "invalid model name"),
            (#"{"model":"a/b/c/d/e"}"#, 400, "invalid model name"),
            (#"{"model":42}"#, 400, #"invalid request body: "model" must be a string"#),
            (#"{"model":"x","stream":"yes"}"#, 400, #"invalid request body: "stream" must be a boolean"#),
            (#"["model"]"#, 400, "invalid request body: the body must be a JSON object"),
            (#"{"model": "x""#, 400, "invalid request body: malformed JSON"),
            (
                "{\"model\":\"" + String(repeating: "a", count: 70_000) + "\"}", 413,
                "request body too large (limit 65536 bytes)"
            )
        ]
        for (body, status, message) in refusals {
            let reply = try await daemon.request("POST", "/api/pull", body: body)
            #expect(reply.status == status, "\(body.prefix(40)): \(reply.status) \(reply.body)")
            #expect(reply.json["error"] as? String == message, "\(body.prefix(40)): \(reply.body)")
            #expect(reply.contentType?.hasPrefix("application/json") == true)
        }
        // Ollama quotes the name as the client wrote it (`req.Model` in
        // `ShowHandler`, `cmp.Or(r.Model, r.Name)` in `DeleteHandler`).
        let show = try await daemon.request("POST", "/api/show", body: #"{"model":"nothere"}"#)
        #expect(show.status == 404 && show.json["error"] as? String == "model 'nothere' not found")
        let delete = try await daemon.request("DELETE", "/api/delete", body: #"{"name":"nothere"}"#)
        #expect(delete.status == 404 && delete.json["error"] as? String == "model 'nothere' not found")
        let badDelete = try await daemon.request("DELETE", "/api/delete", body: #"{"model":"a:b:c"}"#)
        #expect(badDelete.status == 400 && badDelete.json["error"] as? String == #"name "a:b:c" is invalid"#)

        // Still serving after all of it, and nothing was written.
        #expect(try await daemon.request("GET", "/").status == 200)
        #expect(listFiles(models.path).isEmpty, "\(listFiles(models.path))")
        let stopped = daemon.stop()
        #expect(stopped.status == 0 && stopped.seconds < 5)
    }

    @Test func streamsOllamasEventsThenListsShowsAndDeletes() async throws {
        let registry = try TestRegistry(root: Self.fixture.dir.path, cdn: true)
        let models = TempDir("haul-models")
        let logs = TempDir("haul-logs")
        let daemon = try await Daemon(models: models.path, logs: logs)
        let name = "\(registry.host)/library/chat"
        let model = Self.fixture.model

        // The deprecated `name` field works like `model`.
        let pull = try await daemon.request("POST", "/api/pull", body: #"{"name":"\#(name)","insecure":true}"#)
        #expect(pull.status == 200 && pull.contentType == "application/x-ndjson")
        let lines = pull.lines
        let statuses = lines.compactMap { $0["status"] as? String }
        #expect(statuses.first == "pulling manifest")
        #expect(Array(statuses.suffix(3)) == ["verifying sha256 digest", "writing manifest", "success"])
        #expect(!pull.body.contains("\"completed\":0"), "completed must be omitted when 0")
        for layer in model.layers {
            let mine = lines.filter { $0["digest"] as? String == layer.digest.description }
            #expect(!mine.isEmpty, "no line for \(layer.digest)")
            #expect(
                mine.allSatisfy {
                    $0["status"] as? String == "pulling \(layer.digest.short)" && $0["total"] as? Int == Int(layer.size)
                })
            let completed = mine.map { $0["completed"] as? Int ?? 0 }
            #expect(completed == completed.sorted() && completed.last == Int(layer.size))
        }
        // Bounded rate: a 24 MB blob is a handful of lines, not one per chunk.
        #expect(lines.count < 200, "\(lines.count) lines")

        // /api/tags: Ollama's fields, details from the config blob.
        let tags = try await daemon.request("GET", "/api/tags").json["models"] as? [[String: Any]] ?? []
        #expect(tags.count == 1)
        let entry = try #require(tags.first)
        #expect(entry["name"] as? String == name + ":latest" && entry["model"] as? String == name + ":latest")
        #expect(entry["digest"] as? String == Digest(bytes: SHA256.hash(model.manifestBytes)).hex)
        #expect(entry["size"] as? Int == model.layers.reduce(0) { $0 + Int($1.size) })
        #expect((entry["modified_at"] as? String)?.wholeMatch(of: /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z/) != nil)
        let details = entry["details"] as? [String: Any] ?? [:]
        #expect(details["format"] as? String == "gguf" && details["family"] as? String == "test")
        #expect(details["families"] as? [String] == ["test"])
        #expect(details["parameter_size"] as? String == "tiny" && details["quantization_level"] as? String == "F16")

        // /api/show: the text layers and what they imply.
        let show = try await daemon.request("POST", "/api/show", body: #"{"model":"\#(name)"}"#).json
        #expect(
            show["template"] as? String
                == "{{ if .System }}{{ .System }}{{ end }}{{ .Prompt }}{{ if .Tools }}tools{{ end }}")
        #expect(show["system"] as? String == "You are terse.")
        #expect(show["license"] as? String == "MIT, for the test.")
        #expect(
            show["parameters"] as? String == """
                num_ctx                        4096
                stop                           "<|end|>"
                stop                           "<|user|>"
                temperature                    0.7
                """)
        #expect(show["capabilities"] as? [String] == ["completion", "tools"])
        let modelfile = show["modelfile"] as? String ?? ""
        #expect(modelfile.contains("FROM \(models.path)/blobs/\(model.layers[0].digest.fileName)"))
        #expect(
            modelfile.contains("PARAMETER stop \"<|end|>\"") && modelfile.contains("SYSTEM \"\"\"You are terse.\"\"\""))

        // stream:false: only the final object.
        let again = try await daemon.request(
            "POST", "/api/pull", body: #"{"model":"\#(name)","insecure":true,"stream":false}"#)
        #expect(again.status == 200 && again.body == #"{"status":"success"}"#)
        let missing = try await daemon.request(
            "POST", "/api/pull", body: #"{"model":"\#(registry.host)/library/nope","insecure":true,"stream":false}"#)
        #expect(missing.status == 500 && missing.json["error"] as? String == "pull model manifest: file does not exist")
        // Streaming, the same failure is a 200 whose last line is the error.
        let missingStream = try await daemon.request(
            "POST", "/api/pull", body: #"{"model":"\#(registry.host)/library/nope","insecure":true}"#)
        #expect(missingStream.status == 200)
        #expect(missingStream.lines.last?["error"] as? String == "pull model manifest: file does not exist")

        // /api/delete removes the manifest and the blobs.
        let delete = try await daemon.request("DELETE", "/api/delete", body: #"{"model":"\#(name)"}"#)
        #expect(delete.status == 200)
        #expect(try await daemon.request("GET", "/api/tags").body == #"{"models":[]}"#)
        #expect(FileSystem.listDirectory(models.path + "/blobs").isEmpty)
        #expect(daemon.stop().status == 0)
    }

    @Test func eightClientsShareOneDownloadPerBlob() async throws {
        // 16 connections at 4 MB/s: the 128 MB layer takes about 2 s, so the
        // clients overlap whatever order they arrive in.
        let registry = try TestRegistry(root: Self.fixture.dir.path, cdn: true, rate: "4M")
        let models = TempDir("haul-models")
        let logs = TempDir("haul-logs")
        let daemon = try await Daemon(models: models.path, logs: logs)
        let name = "\(registry.host)/library/shared"
        let clients = try (0..<8).map { _ in try daemon.curlPull(name, logs: logs) }
        for client in clients { client.wait() }
        for (i, client) in clients.enumerated() {
            let lines = client.stdout.split(separator: "\n")
            #expect(lines.last == #"{"status":"success"}"#, "client \(i): \(client.stdout.suffix(300))")
            // Each client saw its own progress up to the end of every blob.
            for layer in Self.fixture.shared.layers {
                #expect(
                    client.stdout.contains(#""total":\#(layer.size),"completed":\#(layer.size)}"#),
                    "client \(i), \(layer.digest.short)")
            }
        }
        for layer in Self.fixture.shared.layers {
            let served = try await registry.bytesServed(layer.digest)
            #expect(
                served >= Int(layer.size) && served <= Int(Double(layer.size) * 1.05),
                "\(layer.digest.short): \(served) bytes served for \(layer.size)")
        }
        #expect(daemon.stop().status == 0)
    }

    @Test func aDownloadStopsOnlyWhenItsLastClientLeavesAndResumesAfter() async throws {
        let registry = try TestRegistry(root: Self.fixture.dir.path, cdn: true, rate: "1M")
        let models = TempDir("haul-models")
        let logs = TempDir("haul-logs")
        let daemon = try await Daemon(models: models.path, logs: logs)
        let name = "\(registry.host)/library/other"
        let blob = try #require(Self.fixture.other.layers.first { $0.size == 96 << 20 })
        let store = ModelStore(root: models.path)

        // Two clients; one hangs up. The other still gets the whole model.
        let leaving = try daemon.curlPull(name, logs: logs)
        let staying = try daemon.curlPull(name, logs: logs)
        #expect(try await waitUntil { leaving.stdout.contains("\"completed\":") })
        leaving.send(SIGKILL)
        leaving.wait()
        // Then the last one hangs up: the download stops and lets go of its partial.
        #expect(try await waitUntil { staying.stdout.contains("\"completed\":") })
        try await Task.sleep(for: .milliseconds(500))
        staying.send(SIGKILL)
        staying.wait()
        #expect(
            try await waitUntil(timeout: 10) { store.partials().contains { $0.digest == blob.digest && !$0.inUse } },
            "partials: \(store.partials()), blobs: \(FileSystem.listDirectory(store.blobsDirectory)), daemon: \(daemon.process.stderr.suffix(800))"
        )
        // (The registry may still count a chunk per connection that it wrote
        // before it saw the connection close.)
        try await Task.sleep(for: .milliseconds(300))
        let servedAtStop = try await registry.bytesServed(blob.digest)
        try await Task.sleep(for: .milliseconds(600))
        #expect(
            try await registry.bytesServed(blob.digest) == servedAtStop,
            "the registry kept sending after the last client left")
        let kept = try #require(store.partials().first { $0.digest == blob.digest }).completed
        #expect(kept > 0 && kept < blob.size)

        // A new request resumes from the partial rather than starting over.
        let resumed = try await daemon.request(
            "POST", "/api/pull", body: #"{"model":"\#(name)","insecure":true,"stream":false}"#)
        #expect(resumed.status == 200 && resumed.body == #"{"status":"success"}"#)
        let served = try await registry.bytesServed(blob.digest)
        #expect(
            served <= Int(blob.size) + Int(Double(blob.size) * 0.1),
            "\(served) bytes served for \(blob.size), \(kept) kept")
        #expect(sameContent(store.blobPath(blob.digest), Self.fixture.dir.path + "/blobs/" + blob.digest.fileName))
        #expect(daemon.stop().status == 0)
    }

    @Test func sigtermCancelsPullsInFlightAndKeepsTheirData() async throws {
        let registry = try TestRegistry(root: Self.fixture.dir.path, cdn: true, rate: "1M")
        let models = TempDir("haul-models")
        let logs = TempDir("haul-logs")
        let daemon = try await Daemon(models: models.path, logs: logs)
        let client = try daemon.curlPull("\(registry.host)/library/other", logs: logs)
        #expect(try await waitUntil { client.stdout.contains("\"completed\":") })
        let stopped = daemon.stop()
        #expect(stopped.status == 0 && stopped.seconds < 5, "exit \(stopped.status) after \(stopped.seconds) s")
        client.wait()
        #expect(client.stdout.split(separator: "\n").last == #"{"error":"pull cancelled"}"#)
        let blob = try #require(Self.fixture.other.layers.first { $0.size == 96 << 20 })
        let partial = try #require(ModelStore(root: models.path).partials().first { $0.digest == blob.digest })
        #expect(partial.completed > 0 && !partial.inUse)
    }

    @Test func theCLIPullsThroughADaemon() async throws {
        let registry = try TestRegistry(root: Self.fixture.dir.path, cdn: true)
        let models = TempDir("haul-models")
        let logs = TempDir("haul-logs")
        let elsewhere = TempDir("haul-cli")
        let daemon = try await Daemon(models: models.path, logs: logs)
        let name = "\(registry.host)/library/chat"
        // OLLAMA_HOST set: the CLI streams from the daemon; its own
        // OLLAMA_MODELS is untouched.
        let viaHost = try run(
            haulBinary, ["pull", name, "--insecure"],
            environment: ["OLLAMA_HOST": daemon.host, "OLLAMA_MODELS": elsewhere.path])
        #expect(viaHost.status == 0, "\(viaHost.stderr)")
        #expect(
            viaHost.stderr.contains("pulling \(Self.fixture.model.layers[0].digest.short)")
                && viaHost.stderr.contains("success"))
        #expect(listFiles(elsewhere.path).isEmpty)
        #expect(ModelStore(root: models.path).list().map(\.name.displayShortest) == [name + ":latest"])

        // --json relays the daemon's stream.
        let json = try run(
            haulBinary, ["pull", "--remote", name, "--insecure", "--json"],
            environment: ["OLLAMA_HOST": daemon.url, "OLLAMA_MODELS": elsewhere.path])
        #expect(json.status == 0 && json.stdout.hasSuffix("{\"status\":\"success\"}\n"), "\(json.stdout)")

        // The daemon's refusals come back as the ollama CLI prints them.
        let bad = try run(haulBinary, ["pull", "bad/../name"], environment: ["OLLAMA_HOST": daemon.host])
        #expect(bad.status == 1 && bad.stderr == "Error: 400 Bad Request: invalid model name\n", "\(bad.stderr)")
        let missing = try run(
            haulBinary, ["pull", "\(registry.host)/library/nope", "--insecure"],
            environment: ["OLLAMA_HOST": daemon.host])
        #expect(
            missing.status == 1 && missing.stderr.hasSuffix("Error: pull model manifest: file does not exist\n"),
            "\(missing.stderr)")
        // --local ignores OLLAMA_HOST.
        let local = try run(
            haulBinary, ["pull", "--local", name, "--insecure", "-q"],
            environment: ["OLLAMA_HOST": daemon.host, "OLLAMA_MODELS": elsewhere.path])
        #expect(local.status == 0 && ModelStore(root: elsewhere.path).list().count == 1)
        #expect(daemon.stop().status == 0)
    }

    /// The Python of the virtualenv `make test` prepares (HAUL_TEST_PYTHON),
    /// with the official `ollama` client and llama.cpp's `gguf` from PyPI.
    static var python: String {
        get throws {
            let python =
                ProcessInfo.processInfo.environment["HAUL_TEST_PYTHON"]
                ?? testsDirectory.appendingPathComponent(".venv/bin/python").path
            guard FileManager.default.isExecutableFile(atPath: python) else {
                throw TestFailure(
                    "no Python with the ollama client at \(python): run 'make test', which creates Tests/.venv")
            }
            return python
        }
    }

    @Test func ollamasPythonClientPullsListsShowsAndDeletes() async throws {
        let root = testsDirectory
        let python = try Self.python
        let registry = try TestRegistry(root: Self.fixture.dir.path, cdn: true)
        let models = TempDir("haul-models")
        let logs = TempDir("haul-logs")
        let daemon = try await Daemon(models: models.path, logs: logs)
        let check = try run(
            python,
            [
                root.appendingPathComponent("clients/ollama_client_check.py").path,
                daemon.url, "\(registry.host)/library/chat"
            ])
        #expect(check.status == 0, "\(check.stderr)")
        let seen = (try? JSONSerialization.jsonObject(with: Data(check.stdout.utf8))) as? [String: Any] ?? [:]
        #expect(seen["blobs"] as? Int == Self.fixture.model.layers.count, "\(check.stdout)")
        #expect(daemon.stop().status == 0)
    }

    /// A real GGUF (written by llama.cpp's `gguf` package) pulled through
    /// the daemon: show() reports model_info, capabilities and tensors as
    /// Ollama derives them from the same file (the rules are cited in
    /// Tests/clients/gguf_show_check.py, which computes them with gguf's own
    /// reader).
    @Test func aGGUFModelShowsWhatOllamaWouldReport() async throws {
        let python = try Self.python
        let script = testsDirectory.appendingPathComponent("clients/gguf_show_check.py").path
        let dir = TempDir("haul-gguf-registry")
        let written = try run(python, [script, "write", dir.sub("tiny.gguf")])
        try #require(written.status == 0, "\(written.stderr)")
        let template =
            #"{{- range .Messages }}{{ if eq .Role "assistant" }}{{ if .Thinking }}<think>{{ .Thinking }}</think>{{ end }}"#
            + #"{{ .Content }}{{ else }}{{ .Content }}{{ end }}{{ end }}{{ if .Tools }}{{ json .Tools }}{{ end }}"#
        let made = try run(
            "/usr/bin/env",
            [
                "python3", TestRegistry.script, "make-model", "--root", dir.path, "--name", "library/tiny:latest",
                "--file", dir.sub("tiny.gguf"), "--text", "template=" + template
            ])
        try #require(made.status == 0, "\(made.stderr)")
        let registry = try TestRegistry(root: dir.path, cdn: true)
        let models = TempDir("haul-models")
        let logs = TempDir("haul-logs")
        let daemon = try await Daemon(models: models.path, logs: logs)
        let check = try run(
            python, [script, "check", daemon.url, "\(registry.host)/library/tiny:latest", dir.sub("tiny.gguf")])
        #expect(check.status == 0, "\(check.stderr)")
        let seen = (try? JSONSerialization.jsonObject(with: Data(check.stdout.utf8))) as? [String: Any] ?? [:]
        #expect(seen["parameter_count"] as? Int == 8 * 64 + 64 * 64 + 64, "\(check.stdout)")
        #expect(daemon.stop().status == 0)
    }
}
