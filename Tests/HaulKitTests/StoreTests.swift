import Foundation
import Testing
@testable import HaulKit

@Suite struct StoreTests {
    static func manifest(_ digests: [(String, Int64)], config: (String, Int64)) throws -> Manifest {
        let layers = digests.map { #"{"mediaType":"m","digest":"sha256:\#($0.0)","size":\#($0.1)}"# }.joined(separator: ",")
        return try Manifest(bytes: Array(#"{"schemaVersion":2,"config":{"digest":"sha256:\#(config.0)","size":\#(config.1)},"layers":[\#(layers)]}"#.utf8))
    }

    static func hex(_ c: Character) -> String { String(repeating: c, count: 64) }

    @Test func modelsDirectoryFollowsOllamasRules() {
        #expect(ModelStore.fromEnvironment(["OLLAMA_MODELS": " \"/srv/models\" ", "HOME": "/h"]).root == "/srv/models")
        #expect(ModelStore.fromEnvironment(["HOME": "/h"]).root == "/h/.ollama/models")
        #expect(ModelStore.fromEnvironment(["OLLAMA_MODELS": "", "HOME": "/h"]).root == "/h/.ollama/models")
    }

    @Test func manifestWriteIsAtomicAndLeavesNoTemporaries() throws {
        let dir = TempDir()
        let store = ModelStore(root: dir.path)
        let name = try ModelName(parsing: "host:1/ns/model:tag")
        let m1 = try Self.manifest([(Self.hex("a"), 5)], config: (Self.hex("c"), 2))
        try store.writeManifest(m1, for: name)
        #expect(store.manifestPath(name) == dir.path + "/manifests/host:1/ns/model/tag")
        #expect(Array(fileBytes(store.manifestPath(name))!) == m1.raw)
        let m2 = try Self.manifest([(Self.hex("b"), 7)], config: (Self.hex("c"), 2))
        try store.writeManifest(m2, for: name)
        #expect(Array(fileBytes(store.manifestPath(name))!) == m2.raw)
        #expect(listFiles(dir.path) == ["manifests/host:1/ns/model/tag"])
    }

    @Test func listAndRemoveKeepSharedBlobs() throws {
        let dir = TempDir()
        let store = ModelStore(root: dir.path)
        try FileManager.default.createDirectory(atPath: store.blobsDirectory, withIntermediateDirectories: true)
        for (c, size) in [("a", 5), ("b", 7), ("c", 2)] {
            FileManager.default.createFile(atPath: store.blobsDirectory + "/sha256-" + Self.hex(Character(c)),
                                           contents: Data(repeating: 1, count: size))
        }
        let one = try ModelName(parsing: "one"), two = try ModelName(parsing: "ns/two:x")
        try store.writeManifest(try Self.manifest([(Self.hex("a"), 5)], config: (Self.hex("c"), 2)), for: one)
        try store.writeManifest(try Self.manifest([(Self.hex("b"), 7)], config: (Self.hex("c"), 2)), for: two)
        let listed = store.list()
        #expect(Set(listed.map(\.name.displayShortest)) == ["one:latest", "ns/two:x"])
        #expect(listed.first { $0.name == one }?.size == 7)

        try store.remove(one)
        // a was only one's; c is shared with two.
        #expect(!FileManager.default.fileExists(atPath: store.blobPath(try Digest(parsing: "sha256:" + Self.hex("a")))))
        #expect(FileManager.default.fileExists(atPath: store.blobPath(try Digest(parsing: "sha256:" + Self.hex("c")))))
        #expect(store.list().map(\.name) == [two])
        #expect(!FileManager.default.fileExists(atPath: dir.path + "/manifests/registry.ollama.ai/library"))
        #expect(FileManager.default.fileExists(atPath: dir.path + "/manifests/registry.ollama.ai/ns/two/x"))
        #expect(throws: HaulError.modelNotFound("one:latest")) { try store.remove(one) }
    }

    @Test func cacheHitNeedsTheManifestSize() throws {
        let dir = TempDir()
        let store = ModelStore(root: dir.path)
        try FileManager.default.createDirectory(atPath: store.blobsDirectory, withIntermediateDirectories: true)
        let d = try Digest(parsing: "sha256:" + Self.hex("d"))
        FileManager.default.createFile(atPath: store.blobPath(d), contents: Data(count: 9))
        #expect(store.hasBlob(Layer(mediaType: "", digest: d, size: 9)))
        #expect(!store.hasBlob(Layer(mediaType: "", digest: d, size: 10)))
    }

    @Test func partialsAreLockedAgainstASecondWriter() throws {
        let dir = TempDir()
        let path = dir.sub("p")
        let digest = try Digest(parsing: "sha256:" + Self.hex("e"))
        let first = try PartialBlob(path: path, digest: digest, size: 4096, model: "m")
        #expect(FileSystem.size(path) == 4096)
        #expect(throws: HaulError.self) { try PartialBlob(path: path, digest: digest, size: 4096, model: "m") }
        _ = first
    }
}
