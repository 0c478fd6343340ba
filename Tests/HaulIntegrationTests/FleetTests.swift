import Foundation
import HaulTestSupport
import Testing

@testable import HaulKit

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// `haul serve` as a registry for its neighbours: Haul CLIs with the node
/// in their hosts.toml pull through it, and the upstream sends the model
/// once however many pull at the same time.
@Suite(.serialized) struct FleetTests {
    @Test func eightClientsPullThroughOneNodeAndTheUpstreamSendsTheModelOnce() async throws {
        let fixture = TempDir("haul-fleet-fixture")
        let model = try TestModel.make(
            root: fixture.path, name: "library/tiny:latest", layers: ["40M", "200K"],
            texts: ["template={{ .Prompt }}"])
        let upstream = try TestRegistry(root: fixture.path, cdn: true)
        let logs = TempDir("haul-fleet-logs")
        let node = try await Daemon(
            models: TempDir("haul-node").path, logs: logs,
            environment: ["HAUL_PULL_THROUGH": "http://\(upstream.host)"])
        let hosts = try MirrorTests.hostsDirectory(for: upstream.host, mirrors: [node.url])

        let clients = try (0..<8).map { _ in
            let models = TempDir("haul-client")
            let process = try BackgroundProcess(
                ["pull", "\(upstream.host)/library/tiny", "--insecure", "--json", "--hosts-dir", hosts.path],
                models: models.path, logs: logs)
            return (models, process)
        }
        for (models, process) in clients {
            _ = process.wait()
            #expect(process.process.terminationStatus == 0, "\(process.stderr)")
            let store = ModelStore(root: models.path)
            #expect(store.list().map(\.name.displayShortest) == ["\(upstream.host)/library/tiny:latest"])
            for layer in model.layers {
                #expect(sameContent(store.blobPath(layer.digest), fixture.sub("blobs/" + layer.digest.fileName)))
                #expect(
                    process.stdout.contains("\"digest\":\"\(layer.digest)\",\"host\":\"\(node.host)\""),
                    "came from the node")
            }
        }
        // One pull upstream, however many asked: one manifest request, and
        // each blob sent once (ranges the node split off mid-flight waste
        // what was in flight, but a second download would double it).
        #expect(try await upstream.counter("manifest_requests") == 1)
        for layer in model.layers {
            let sent = try await upstream.bytesServed(layer.digest)
            #expect(
                sent >= layer.size && Int64(sent) < 2 * layer.size,
                "\(layer.digest.short): upstream sent \(sent) of \(layer.size)")
        }
    }

    /// Clients other than Haul read the node as a registry: skopeo (an OCI
    /// client) gets the manifest of a model the node holds, by the default
    /// registry as `ollama pull --insecure node/…` asks, and curl every
    /// blob, intact. (skopeo cannot copy Ollama models at all: it refuses
    /// their layer media types in a Docker v2 manifest.)
    @Test func otherClientsReadTheNodeAsARegistry() async throws {
        let nodeModels = TempDir("haul-node")
        let weights = String(repeating: "weights ", count: 200_000)
        try StoredModel.write(
            "tiny", layers: [("application/vnd.ollama.image.model", weights)], into: ModelStore(root: nodeModels.path))
        let node = try await Daemon(models: nodeModels.path, logs: TempDir("haul-fleet-logs"))
        let inspect = try run(
            "/usr/bin/skopeo", ["inspect", "--raw", "--tls-verify=false", "docker://\(node.host)/library/tiny:latest"])
        #expect(inspect.status == 0, "\(inspect.stderr)")
        let manifest = try #require(try ModelStore(root: nodeModels.path).manifest(for: ModelName(parsing: "tiny")))
        #expect(Array(inspect.stdout.utf8) == manifest.raw)
        let outDir = TempDir("haul-node-client")
        for layer in try manifest.blobs {
            let file = outDir.sub(layer.digest.hex)
            let get = try run("/usr/bin/curl", ["-sf", "-o", file, "\(node.url)/v2/library/tiny/blobs/\(layer.digest)"])
            #expect(get.status == 0)
            #expect(
                sameContent(file, ModelStore(root: nodeModels.path).blobPath(layer.digest)), "\(layer.digest.short)")
        }
    }

    @Test func aNodeIsNoOpenProxyAndServesOnlyWhatItHolds() async throws {
        let fixture = TempDir("haul-fleet-fixture")
        _ = try TestModel.make(root: fixture.path, name: "library/tiny:latest", layers: ["1M"])
        let upstream = try TestRegistry(root: fixture.path, cdn: true)
        // The node serves this (private) registry's models by the operator's
        // choice; it is not listed in HAUL_PULL_THROUGH.
        let node = try await Daemon(
            models: TempDir("haul-node").path, logs: TempDir("haul-fleet-logs"),
            environment: ["HAUL_SERVE_REGISTRIES": upstream.host])
        // Not listed in HAUL_PULL_THROUGH: a miss is a miss, upstream untouched.
        let miss = try await node.request("GET", "/v2/library/tiny/manifests/latest?ns=\(upstream.host)")
        #expect(miss.status == 404 && miss.body.contains("MANIFEST_UNKNOWN"))
        #expect(try await upstream.counter("manifest_requests") == 0)
        // Pulled into the node, then another Haul pulls it from the node by
        // the node's own name (as `ollama pull --insecure node/…` would).
        let pulled = try run(
            haulBinary, ["pull", "\(upstream.host)/library/tiny", "--insecure"],
            environment: ["OLLAMA_HOST": node.host, "OLLAMA_MODELS": TempDir("unused").path])
        #expect(pulled.status == 0, "\(pulled.stderr)")
        let viaNs = try await node.request("GET", "/v2/library/tiny/manifests/latest?ns=\(upstream.host)")
        #expect(viaNs.status == 200 && viaNs.contentType == "application/vnd.docker.distribution.manifest.v2+json")
        // A range of a blob, as a registry answers it.
        let layer = try Manifest(bytes: Array(viaNs.body.utf8)).layers[0]
        let part = try run(
            "/usr/bin/curl",
            [
                "-s", "-D", "-", "-o", "/dev/null", "-r", "10-19",
                "\(node.url)/v2/library/tiny/blobs/\(layer.digest)?ns=\(upstream.host)"
            ])
        #expect(
            part.stdout.contains("206")
                && part.stdout.lowercased().contains("content-range: bytes 10-19/\(layer.size)"), "\(part.stdout)")
        // By default `ns` means registry.ollama.ai, which the node does not hold.
        let other = try await node.request("GET", "/v2/library/tiny/manifests/latest")
        #expect(other.status == 404)
    }

    /// A web page can make a browser request the node's `/v2/` without an
    /// `Origin` (`<img src=…>`): such a request never starts a pull-through,
    /// while a registry client's (no `Sec-Fetch-*` headers) does.
    @Test func aCrossSiteBrowserRequestDoesNotStartAPullThrough() async throws {
        let fixture = TempDir("haul-fleet-fixture")
        _ = try TestModel.make(root: fixture.path, name: "library/tiny:latest", layers: ["1M"])
        let upstream = try TestRegistry(root: fixture.path, cdn: false)
        let models = TempDir("haul-node")
        let logs = TempDir("haul-fleet-logs")
        let node = try await Daemon(
            models: models.path, logs: logs, environment: ["HAUL_PULL_THROUGH": "http://\(upstream.host)"])
        let path = "/v2/library/tiny/manifests/latest?ns=\(upstream.host)"
        for headers in [
            ["Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "image"],
            ["Sec-Fetch-Site": "same-site", "Sec-Fetch-Mode": "cors"],
            ["Sec-Fetch-Mode": "no-cors"]
        ] {
            let refused = try await node.request("GET", path, headers: headers)
            #expect(
                refused.status == 403 && refused.body.contains("DENIED"),
                "\(headers): \(refused.status) \(refused.body)")
        }
        #expect(try await upstream.counter("manifest_requests") == 0)
        #expect(ModelStore(root: models.path).list().isEmpty)
        let client = try await node.request("GET", path)
        #expect(client.status == 200, "\(client.body)")
        #expect(ModelStore(root: models.path).list().count == 1)
    }

    /// A blob miss in one repository does not wait for another repository's
    /// pull-through (it used to wait for every pull in flight).
    @Test func aBlobMissWaitsOnlyForItsOwnRepository() async throws {
        let fixture = TempDir("haul-fleet-fixture")
        _ = try TestModel.make(root: fixture.path, name: "library/slow:latest", layers: ["24M"])
        // 256 KB/s a connection: 16 connections need about 6 s.
        let upstream = try TestRegistry(root: fixture.path, cdn: false, rate: "256K")
        let models = TempDir("haul-node")
        let logs = TempDir("haul-fleet-logs")
        let node = try await Daemon(
            models: models.path, logs: logs, environment: ["HAUL_PULL_THROUGH": "http://\(upstream.host)"])
        let url = node.url
        let host = upstream.host
        // A pull-through of library/slow that takes seconds.
        let slow = Task {
            try? await URLSession.shared.data(from: URL(string: url + "/v2/library/slow/manifests/latest?ns=\(host)")!)
        }
        #expect(try await waitUntil(timeout: 30) { try await upstream.counter("manifest_requests") >= 1 })
        let missing = "sha256:" + String(repeating: "ab", count: 32)
        let start = Date()
        let miss = try await node.request("GET", "/v2/library/other/blobs/\(missing)?ns=\(host)")
        let seconds = Date().timeIntervalSince(start)
        #expect(miss.status == 404 && seconds < 2, "a miss of another repository took \(seconds) s")
        let (_, finished) = await (slow.value, Date().timeIntervalSince(start))
        #expect(finished > 3, "the pull-through was still running during the miss (it took \(finished) s more)")
    }
}
