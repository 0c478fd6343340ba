import Foundation
import HaulTestSupport
import Testing

@testable import HaulKit
@testable import haul_fuzz

/// Replays the committed fuzz corpora (Tests/fuzz/corpus/<target>) through
/// the same targets `make fuzz` runs, so every input that once mattered
/// stays a regression test. A broken invariant stops the process.
@Suite struct FuzzCorpusTests {
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("fuzz/corpus").path

    static func inputs(_ target: String) -> [(String, [UInt8])] {
        let dir = corpus + "/" + target
        return FileSystem.listDirectory(dir).compactMap { name in
            (try? FileSystem.readFile(dir + "/" + name, limit: 1 << 20)).map { (name, $0) }
        }
    }

    @Test(arguments: [
        "name", "manifest", "content-range", "journal", "www-authenticate", "gguf", "response", "numbers",
        "manifest-list"
    ])
    func corpusKeepsItsInvariants(target: String) throws {
        let run = try #require(FuzzTargets.all[target])
        let inputs = Self.inputs(target)
        #expect(inputs.count >= 2, "corpus for \(target) is missing")
        for (_, bytes) in inputs { run(bytes) }
    }

    @Test func seedsAreJudgedAsExpected() throws {
        let seeds = Dictionary(
            uniqueKeysWithValues: ["name", "manifest", "journal"].flatMap { t in
                Self.inputs(t).map { ("\(t)/\($0.0)", $0.1) }
            })
        func text(_ key: String) -> String { String(decoding: seeds[key] ?? [], as: UTF8.self) }
        #expect((try? ModelName(parsing: text("name/full"))) != nil)
        #expect((try? ModelName(parsing: text("name/traversal"))) == nil)
        #expect((try? Manifest(bytes: seeds["manifest/dup"] ?? []).blobs.count) == 2, "duplicates once, plus config")
        #expect((try? Manifest(bytes: seeds["manifest/hostile"] ?? [])) == nil)
        #expect((try? ResumeJournal.decode(seeds["journal/live"] ?? []))?.boot != nil)
        #expect((try? ResumeJournal.decode(seeds["journal/durable"] ?? []))?.point.hashed ?? 0 > 0)
        #expect((try? ResumeJournal.decode(seeds["journal/unhashed"] ?? []))?.point.ranges.count == 4000)
    }
}
