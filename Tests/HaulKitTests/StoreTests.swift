import Foundation
import HaulTestSupport
import Synchronization
import Testing

@testable import HaulKit

@Suite struct StoreTests {
    static func manifest(_ digests: [(String, Int64)], config: (String, Int64)) throws -> Manifest {
        let layers = digests.map { #"{"mediaType":"m","digest":"sha256:\#($0.0)","size":\#($0.1)}"# }.joined(
            separator: ",")
        return try Manifest(
            bytes: Array(
                #"{"schemaVersion":2,"config":{"digest":"sha256:\#(config.0)","size":\#(config.1)},"layers":[\#(layers)]}"#
                    .utf8))
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
            FileManager.default.createFile(
                atPath: store.blobsDirectory + "/sha256-" + Self.hex(Character(c)),
                contents: Data(repeating: 1, count: size))
        }
        let one = try ModelName(parsing: "one")
        let two = try ModelName(parsing: "ns/two:x")
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

    @Test func aSecondWriterWaitsForTheLockInsteadOfFailing() async throws {
        let dir = TempDir()
        let path = dir.sub("p")
        let digest = try Digest(parsing: "sha256:" + Self.hex("e"))
        var first: PartialBlob? = try PartialBlob(path: path, digest: digest, size: 4096, model: "m")
        #expect(FileSystem.size(path) == 4096)
        #expect(throws: HaulError.self) { try PartialBlob(path: path, digest: digest, size: 4096, model: "m") }
        let waited = Mutex(false)
        let second = Task {
            try await PartialBlob.lockedDescriptor(path: path) { waited.withLock { $0 = true } }.isStillAtPath
        }
        #expect(try await waitUntil(timeout: 120) { waited.withLock { $0 } })
        first = nil
        #expect(try await second.value)
        _ = first
    }

    /// Process B opens the partial just before A renames it to its final
    /// blob name, and wins the lock on the renamed inode. It must let go of
    /// that file and open the path again, never truncate the stored blob.
    @Test func aLockWonOnARenamedPartialNeverTouchesTheStoredBlob() async throws {
        let dir = TempDir()
        let store = ModelStore(root: dir.path)
        try store.prepareDirectories()
        let data = Array("a verified blob".utf8)
        let digest = Digest(bytes: SHA256.hash(data))
        let path = store.partialPath(digest)
        // A: holds the partial, with the verified bytes in it.
        let a = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        #expect(flock(a, LOCK_EX) == 0)
        _ = data.withUnsafeBytes { pwrite(a, $0.baseAddress, $0.count, 0) }
        // B: opens the same inode and waits for its lock.
        let waited = Mutex(false)
        // What B goes on to do with its file (a fresh partial: emptied and
        // preallocated) must leave the stored blob alone.
        let b = Task {
            let fd = try await PartialBlob.lockedDescriptor(path: path) { waited.withLock { $0 = true } }
            let isAtPath = fd.isStillAtPath
            let partial = try PartialBlob(
                locked: fd, files: PartialFiles(data: path), digest: digest, size: 4096, model: "m")
            return (isAtPath, partial)
        }
        #expect(try await waitUntil(timeout: 120) { waited.withLock { $0 } })
        // A commits: rename to the final name, then lets go.
        #expect(rename(path, store.blobPath(digest)) == 0)
        close(a)
        let (isAtPath, partial) = try await b.value
        #expect(isAtPath)
        #expect(partial.resume == .empty)
        #expect(try FileSystem.readFile(store.blobPath(digest), limit: 100) == data)
        #expect(FileSystem.size(path) == 4096)
    }
}
