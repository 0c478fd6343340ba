import Foundation
import HaulTestSupport
import Testing

@testable import HaulKit

/// Import staging is told dead from live by its lock alone: a sweep
/// removes what dead imports left and never a running import's.
struct ImportStagingTests {
    @Test func aSweepRemovesDeadStagingAndKeepsALiveImports() throws {
        let dir = TempDir()
        let store = ModelStore(root: dir.path)
        let live = try ImportStaging.make(in: store)
        let liveName = FileSystem.basename(of: live.path)
        #expect(liveName.hasPrefix("import-") && liveName.count == "import-".count + 6)
        FileManager.default.createFile(atPath: live.path + "/blob", contents: Data(count: 4096))
        // What a killed import leaves: an unlocked directory with copies.
        let dead = store.haulDirectory + "/import-Ab12Cd"
        try FileManager.default.createDirectory(atPath: dead + "/blobs/sha256", withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: dead + "/blobs/sha256/x", contents: Data(count: 8192))
        // The older naming: dead once its process is; this process is alive.
        let legacyAlive = store.haulDirectory + "/import-\(getpid())-7"
        let legacyDead = store.haulDirectory + "/import-2147483646-7"
        for path in [legacyAlive, legacyDead] {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        }

        let listed = Dictionary(uniqueKeysWithValues: store.stagedImports().map { ($0.name, $0) })
        #expect(listed[liveName]?.inUse == true && listed["import-Ab12Cd"]?.inUse == false)
        #expect((listed["import-Ab12Cd"]?.allocated ?? 0) >= 8192)
        #expect(throws: HaulError.self) { try store.removeStagedImport(liveName) }

        store.removeDeadStagedImports()
        #expect(FileManager.default.fileExists(atPath: live.path + "/blob"))
        #expect(!FileManager.default.fileExists(atPath: dead))
        #expect(
            FileManager.default.fileExists(atPath: legacyAlive) && !FileManager.default.fileExists(atPath: legacyDead))
        live.remove()
        #expect(!FileManager.default.fileExists(atPath: live.path))
    }

    @Test func aSymlinkNamedLikeStagingIsNeitherFollowedNorCounted() throws {
        let dir = TempDir()
        let store = ModelStore(root: dir.path)
        let victim = TempDir()
        FileManager.default.createFile(atPath: victim.sub("keep"), contents: Data("mine".utf8))
        try FileManager.default.createDirectory(atPath: store.haulDirectory, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(
            atPath: store.haulDirectory + "/import-Zz9Yy8", withDestinationPath: victim.path)
        #expect(store.stagedImports().isEmpty)
        store.removeDeadStagedImports()
        #expect(FileManager.default.fileExists(atPath: victim.sub("keep")))
    }
}
