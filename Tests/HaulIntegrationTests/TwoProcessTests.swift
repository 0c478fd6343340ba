import Foundation
import HaulTestSupport
import Testing

@testable import HaulKit

/// Several Haul processes on one models directory: two CLIs, a CLI and a
/// daemon, a pull and an `rm`. Each blob is downloaded about once, both
/// pulls succeed, and nothing a pull is about to reference is deleted.
@Suite(.serialized) struct TwoProcessTests {
    static let fixture: (dir: TempDir, model: TestModel, other: TestModel) = {
        let dir = TempDir("haul-two")
        let model = try! TestModel.make(root: dir.path, name: "library/shared:latest", layers: ["512M", "1K"])
        let other = try! TestModel.make(root: dir.path, name: "library/other:latest", layers: ["8M"])
        return (dir, model, other)
    }()

    static var modelBytes: Int64 { fixture.model.layers.reduce(0) { $0 + $1.size } }

    /// The model is stored right, and the registry served it about once.
    static func expectStoredOnce(
        _ models: TempDir, from registry: TestRegistry,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws {
        let store = ModelStore(root: models.path)
        var served: Int64 = 0
        for layer in fixture.model.layers {
            #expect(
                sameContent(store.blobPath(layer.digest), fixture.dir.path + "/blobs/" + layer.digest.fileName),
                "\(layer.digest.short)", sourceLocation: sourceLocation)
            served += Int64(try await registry.bytesServed(layer.digest))
        }
        #expect(IntegrityTests.dishonestBlobs(models.path).isEmpty, sourceLocation: sourceLocation)
        #expect(
            Double(served) <= 1.2 * Double(modelBytes), "served \(served) of \(modelBytes)",
            sourceLocation: sourceLocation)
    }

    @Test func twoCLIsPullingOneModelBothSucceedAndShareTheBytes() async throws {
        let registry = try TestRegistry(root: Self.fixture.dir.path, rate: "6M")
        let models = TempDir("haul-models")
        let logs = TempDir("haul-logs")
        let name = "\(registry.host)/\(Self.fixture.model.name)"
        // Both start at once; the registry is paced (16 connections x 6 MB/s)
        // so the 512 MiB layer takes seconds and whichever pull comes second
        // finds the first one on it.
        let first = try BackgroundProcess(["pull", "--insecure", name], models: models.path, logs: logs)
        let second = try BackgroundProcess(["pull", "--insecure", name], models: models.path, logs: logs)
        first.wait()
        second.wait()
        #expect(first.process.terminationStatus == 0, "\(first.stderr.suffix(800))")
        #expect(second.process.terminationStatus == 0, "\(second.stderr.suffix(800))")
        #expect(
            (first.stderr + second.stderr).contains("waiting for another Haul process"),
            "\(first.stderr.suffix(500)) \(second.stderr.suffix(500))")
        #expect(!(first.stderr + second.stderr).contains("resource temporarily unavailable"))
        try await Self.expectStoredOnce(models, from: registry)
    }

    @Test func aCLIAndADaemonPullingOneModelBothSucceed() async throws {
        let registry = try TestRegistry(root: Self.fixture.dir.path, rate: "6M")
        let models = TempDir("haul-models")
        let logs = TempDir("haul-logs")
        let name = "\(registry.host)/\(Self.fixture.model.name)"
        let daemon = try await Daemon(models: models.path, logs: logs)
        let viaDaemon = try daemon.curlPull(name, logs: logs)
        let cli = try run(
            haulBinary, ["pull", "--insecure", "--local", name], environment: ["OLLAMA_MODELS": models.path])
        viaDaemon.wait()
        #expect(cli.status == 0, "\(cli.stderr.suffix(800))")
        #expect(viaDaemon.stdout.contains("\"status\":\"success\""), "\(viaDaemon.stdout.suffix(800))")
        try await Self.expectStoredOnce(models, from: registry)
    }

    /// `haul rm` of a model in another process, while a pull that uses the
    /// same (cached) layer is between finding it and writing its manifest,
    /// must leave that layer alone.
    @Test func rmInAnotherProcessNeverDeletesABlobAPullIsAboutToReference() async throws {
        let registry = try TestRegistry(root: Self.fixture.dir.path, rate: "4M")
        let models = TempDir("haul-models")
        let logs = TempDir("haul-logs")
        let store = ModelStore(root: models.path)
        let other = Self.fixture.other
        let otherName = "\(registry.host)/\(other.name)"
        // Stored already: the 8 MiB model.
        let first = try haul(["pull", "--insecure", otherName], models: models.path)
        #expect(first.status == 0, "\(first.stderr)")
        // A second tag of the same model, pulled slowly by another process:
        // the copy of its manifest under another tag references the same
        // layer, which the pull finds cached; its config blob arrives last.
        let tagged = try TestModel.copyTag(other, to: "library/other:second", root: Self.fixture.dir.path)
        try await registry.arm([["kind": "none", "delay": 3.0, "times": 1, "min_size": 0]])
        let pull = try BackgroundProcess(
            ["pull", "--insecure", "\(registry.host)/\(tagged)"], models: models.path, logs: logs)
        #expect(try await waitUntil(timeout: 30) { FileSystem.listDirectory(models.path + "/.haul/pins").count == 1 })
        // Meanwhile, another process removes the stored model.
        let rm = try haul(["rm", otherName], models: models.path)
        #expect(rm.status == 0, "\(rm.stderr)")
        pull.wait()
        #expect(pull.process.terminationStatus == 0, "\(pull.stderr.suffix(800))")
        // The layer the pulled tag references survived the rm.
        for layer in other.layers {
            #expect(store.hasBlob(layer), "\(layer.digest.short) was deleted under a pull")
        }
        #expect(FileSystem.listDirectory(models.path + "/.haul/pins").isEmpty)
    }
}
