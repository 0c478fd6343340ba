import Foundation
import HaulTestSupport
import Testing

@testable import HaulKit

/// Trust in blobs already on disk: `haul verify` re-hashes them, reports a
/// bad one with the models it breaks, takes it out of use, and `--repair`
/// fetches only it again.
@Suite(.serialized) struct VerifyTests {
    @Test func aBlobChangedOnDiskIsFoundQuarantinedAndRepairedAlone() async throws {
        let fixture = TempDir("haul-verify")
        let model = try TestModel.make(root: fixture.path, name: "library/checked:latest", layers: ["6M", "1M"])
        let registry = try TestRegistry(root: fixture.path, cdn: false)
        let name = "\(registry.host)/\(model.name)"
        let models = TempDir("haul-models")
        let store = ModelStore(root: models.path)
        #expect(try haul(["pull", "--insecure", name], models: models.path).status == 0)

        let clean = try haul(["verify", "--all"], models: models.path)
        #expect(clean.status == 0, "\(clean.stderr)")
        #expect(clean.stderr.contains("3 blobs of 1 models checked: 0 bad"), "\(clean.stderr)")

        // One byte of the big layer flips on disk; its size stays right, so
        // a pull would trust it.
        let bad = model.layers[0]
        let fd = open(store.blobPath(bad.digest), O_RDWR)
        var byte: UInt8 = 0
        pread(fd, &byte, 1, 123_456)
        byte ^= 0x01
        pwrite(fd, &byte, 1, 123_456)
        close(fd)
        #expect(store.hasBlob(bad))

        let found = try haul(
            ["verify", model.name.replacingOccurrences(of: "library/", with: "\(registry.host)/library/")],
            models: models.path)
        #expect(found.status == 1)
        #expect(found.stderr.contains("bad: \(bad.digest.fileName): its bytes hash to sha256:"), "\(found.stderr)")
        #expect(found.stderr.contains("used by \(registry.host)/library/checked:latest"), "\(found.stderr)")
        // Out of use: nothing under blobs/ by that name any more.
        #expect(!FileSystem.exists(store.blobPath(bad.digest)))
        #expect(FileSystem.exists(models.path + "/.haul/quarantine/" + bad.digest.fileName))

        let before = try await registry.stats()["blob_bytes"] as? [String: Int] ?? [:]
        let repaired = try haul(["verify", "--all", "--repair", "--insecure"], models: models.path)
        #expect(repaired.status == 0, "\(repaired.stderr)")
        let after = try await registry.stats()["blob_bytes"] as? [String: Int] ?? [:]
        // Only the bad blob moved again (the registry also counts bytes a
        // split range left in flight, hence no exact size).
        let again = (after[bad.digest.hex] ?? 0) - (before[bad.digest.hex] ?? 0)
        #expect(again >= Int(bad.size) && again <= 2 * Int(bad.size), "\(again) bytes")
        for other in model.layers.dropFirst() {
            #expect(after[other.digest.hex] == before[other.digest.hex], "\(other.digest.short) was fetched again")
        }
        #expect(sameContent(store.blobPath(bad.digest), fixture.path + "/blobs/" + bad.digest.fileName))
        #expect(try haul(["verify", "--all"], models: models.path).status == 0)

        // Usage errors are said plainly.
        let neither = try haul(["verify"], models: models.path)
        #expect(
            neither.status != 0 && neither.stderr.contains("name the models to verify, or use --all"),
            "\(neither.stderr)")
        let unknown = try haul(["verify", "nope"], models: models.path)
        #expect(unknown.status == 1 && unknown.stderr.contains("not found"), "\(unknown.stderr)")
    }
}
