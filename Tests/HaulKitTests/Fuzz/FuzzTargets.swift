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
        "www-authenticate": wwwAuthenticate, "gguf": gguf, "template": template,
    ]

    /// Go templates (any model's template layer): the scan ends, every
    /// field it reports is a lower-cased identifier, and the result does
    /// not depend on text appended after the last action's end.
    static func template(_ data: [UInt8]) {
        let text = String(decoding: data, as: UTF8.self)
        let scan = TemplateScan(text)
        for field in scan.fields {
            check(!field.isEmpty && field == field.lowercased() && !field.contains(where: { $0 == "." || $0 == " " || $0 == "}" }),
                  "bad field \(field.debugDescription)")
        }
        if scan.printsThinkingBetweenTags {
            check(text.contains(".Thinking"), "thinking from nowhere")
        }
    }

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

    /// WWW-Authenticate: parsing is bounded, schemes are lower-case
    /// tokens, and a challenge that names a realm keeps it free of the
    /// quoting that delimited it.
    static func wwwAuthenticate(_ data: [UInt8]) {
        let challenges = AuthChallenge.parse(String(decoding: data, as: UTF8.self))
        check(challenges.count <= 32, "\(challenges.count) challenges")
        for c in challenges {
            check(!c.scheme.isEmpty && c.scheme == c.scheme.lowercased() && !c.scheme.contains(" ") && !c.scheme.contains(","),
                  "bad scheme \(c.scheme.debugDescription)")
            check(c.parameters.keys.allSatisfy { !$0.isEmpty && $0 == $0.lowercased() }, "bad parameter names")
        }
        // Serialising what was parsed (all values quoted) parses back the
        // same. Escaping works on bytes: a quote followed by a combining mark
        // is one Character to Swift but still a quote to the parser (the
        // first finding of this target, kept in its corpus).
        func quoted(_ value: String) -> String {
            var bytes: [UInt8] = [0x22]
            for b in value.utf8 {
                if b == 0x22 || b == 0x5C { bytes.append(0x5C) }
                bytes.append(b)
            }
            return String(decoding: bytes + [0x22], as: UTF8.self)
        }
        let text = challenges.map { c -> String in
            let params = c.parameters.keys.sorted().map { "\($0)=\(quoted(c.parameters[$0]!))" }
            return ([c.scheme] + [params.joined(separator: ", ")]).joined(separator: " ")
        }.joined(separator: ", ")
        if challenges.allSatisfy({ $0.token68 == nil && !$0.parameters.isEmpty }) {
            let again = AuthChallenge.parse(text)
            check(again.map(\.scheme) == challenges.map(\.scheme) && again.map(\.parameters) == challenges.map(\.parameters),
                  "\(text.debugDescription) does not re-parse to what it came from")
        }
    }

    /// GGUF metadata: a hostile file is refused or read within the caps,
    /// reading as much when arrays are kept as when they are not, and the
    /// capabilities derived from it never repeat.
    static func gguf(_ data: [UInt8]) {
        guard let all = try? GGUFMetadata.parse(data, keepArraysUpTo: nil) else { return }
        let counted = try? GGUFMetadata.parse(data, keepArraysUpTo: 0)
        check(counted != nil, "readable with arrays kept, not with arrays counted")
        check(all.keyValues.count == counted?.keyValues.count && all.tensors == counted?.tensors, "the two reads differ")
        check(all.tensors.allSatisfy { $0.shape.count <= 8 }, "a tensor with too many dimensions")
        for (_, value) in all.keyValues {
            if case .array(let count, let values) = value { check(values == nil || values?.count == count, "array count") }
            if case .string(let s) = value { check(s.utf8.count <= 16 << 20, "string over the cap") }
        }
        let capabilities = ModelCapabilities.derive(config: [], gguf: all, hasProjector: false, template: "", family: "")
        check(Set(capabilities).count == capabilities.count, "repeated capabilities")
    }

    static func check(_ condition: Bool, _ message: @autoclosure () -> String) {
        if !condition { fatalError("fuzz invariant: \(message())") }
    }
}
