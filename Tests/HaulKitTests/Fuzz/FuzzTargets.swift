// The fuzz targets: each feeds untrusted bytes to one parser and checks the
// invariants its result must keep. Compiled twice: into the libFuzzer binary
// that `make fuzz` builds (with -D FUZZING, inside the HaulKit module), and
// into the test target, where `FuzzCorpusTests` replays the committed corpus
// as regression tests.
#if FUZZING
internal import CShims
#else
import CShims
@testable import HaulKit
#endif

enum FuzzTargets {
    static let all: [String: @Sendable ([UInt8]) -> Void] = [
        "name": name, "manifest": manifest, "content-range": contentRange, "journal": journal,
    ]

    /// Model names: whatever parses must yield path parts that cannot leave
    /// the manifests directory, and must re-parse to itself.
    static func name(_ data: [UInt8]) {
        guard let text = String(validating: data, as: UTF8.self), let n = try? ModelName(parsing: text) else { return }
        for part in n.manifestPathComponents {
            check(!part.isEmpty && part != "." && part != ".." && !part.contains("/") && !part.contains("\0"),
                  "unsafe path part \(part.debugDescription) from \(text.debugDescription)")
        }
        check((try? ModelName(parsing: n.description)) == n, "\(n) does not re-parse")
    }

    /// Manifests: whatever decodes keeps its raw bytes, has only valid
    /// digests and sane sizes, and lists each blob once.
    static func manifest(_ data: [UInt8]) {
        guard let m = try? Manifest(bytes: data) else { return }
        check(m.raw == data, "raw bytes not kept")
        guard let blobs = try? m.blobs else { return }
        check(Set(blobs.map(\.digest)).count == blobs.count, "duplicate blobs")
        for b in blobs {
            check(b.size >= 0, "negative size")
            check(b.digest.fileName.utf8.count == 71 && !b.digest.fileName.contains("/"), "bad file name")
        }
    }

    /// Content-Range: an accepted value describes a real, ordered range.
    static func contentRange(_ data: [UInt8]) {
        var first: Int64 = 0, last: Int64 = 0, total: Int64 = 0
        let ok = (data.filter { $0 != 0 } + [0]).withUnsafeBufferPointer { p in
            p.baseAddress!.withMemoryRebound(to: CChar.self, capacity: p.count) {
                hl_parse_content_range($0, &first, &last, &total)
            }
        }
        guard ok == 0 else { return }
        check(first >= 0 && first <= last && (total == -1 || last < total), "accepted \(first)-\(last)/\(total)")
    }

    /// Resume journals: whatever decodes is self-consistent and survives a
    /// round trip.
    static func journal(_ data: [UInt8]) {
        guard let j = try? ResumeJournal.decode(data) else { return }
        check(j.point.hashed <= j.point.ranges.contiguousPrefix, "hash state beyond the data")
        check(j.point.ranges.ranges.allSatisfy { $0.lowerBound >= 0 && $0.upperBound <= j.size }, "range outside the blob")
        check((try? ResumeJournal.decode(j.encode())) == j, "journal does not round-trip")
    }

    static func check(_ condition: Bool, _ message: @autoclosure () -> String) {
        if !condition { fatalError("fuzz invariant: \(message())") }
    }
}
