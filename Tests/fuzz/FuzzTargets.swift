// The fuzz targets: each feeds untrusted bytes to one parser and checks the
// invariants its result must keep. The `haul-fuzz` target is built twice:
// by `make fuzz` with libFuzzer and AddressSanitizer (-D FUZZING, see
// Entry.swift), and by every debug build, where `FuzzCorpusTests` replays
// the committed corpus through these same functions as regression tests.
// They reach HaulKit's internals, which only a debug build (compiled for
// testing) exposes; a release build of the package compiles none of it.
#if DEBUG
import CShims
@testable import HaulKit

enum FuzzTargets {
    static let all: [String: @Sendable ([UInt8]) -> Void] = [
        "name": name, "manifest": manifest, "content-range": contentRange, "journal": journal,
        "www-authenticate": wwwAuthenticate, "gguf": gguf, "template": template, "response": response,
        "numbers": numbers, "manifest-list": manifestList
    ]

    /// Every number from outside (`WireNumber`, a session's `Range`, a
    /// client's `Range`, `Retry-After`): whatever the text, nothing traps,
    /// and what is accepted is within its bounds. The first 8 bytes are a
    /// blob size for the client's range; the rest is the text.
    static func numbers(_ data: [UInt8]) {
        guard data.count >= 8 else { return }
        let size = Int64(bitPattern: data.prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }) & ((1 << 41) - 1)
        let text = String(decoding: data.dropFirst(8), as: UTF8.self)
        let bounds: ClosedRange<Int64> = 0...Manifest.maxBlobSize
        if let n = WireNumber.parse(text, in: bounds) {
            check(bounds.contains(n), "\(n) outside \(bounds)")
            let digits = text.trimmingCharacters(in: [" ", "\t"])
            check(digits.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 }, "\(text.debugDescription) read as \(n)")
            check(WireNumber.parse(String(n), in: bounds) == n, "\(n) does not read back")
        }
        if let held = try? UploadPlan.held(fromRange: text, from: "fuzz") {
            check((0...Manifest.maxBlobSize).contains(held), "held \(held)")
        }
        switch ByteRange.parse(text, size: size) {
        case .part(let r): check(r.lowerBound >= 0 && r.upperBound < size, "range \(r) of \(size)")
        case .whole, .unsatisfiable: break
        }
        if let wait = RetryPolicy.retryAfter(text) { check(wait >= 0 && !wait.isNaN, "Retry-After \(wait)") }
    }

    /// Manifest lists: whatever decodes keeps its bytes, at most
    /// `maxChildren` children, each distinct.
    static func manifestList(_ data: [UInt8]) {
        guard let list = try? ManifestList(bytes: data) else { return }
        check(list.raw == data, "raw bytes not kept")
        check(list.children.count <= ManifestList.maxChildren, "\(list.children.count) children")
        check(Set(list.children.map(\.key)).count == list.children.count, "a child listed twice")
    }

    /// Go templates (any model's template layer): the scan ends, every
    /// field it reports is a lower-cased identifier, and the result does
    /// not depend on text appended after the last action's end.
    static func template(_ data: [UInt8]) {
        let text = String(decoding: data, as: UTF8.self)
        let scan = TemplateScan(text)
        for field in scan.fields {
            check(
                !field.isEmpty && field == field.lowercased()
                    && !field.contains(where: { $0 == "." || $0 == " " || $0 == "}" }),
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
            check(
                !part.isEmpty && part != "." && part != ".." && !part.contains("/") && !part.contains("\0"),
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
        var first: Int64 = 0
        var last: Int64 = 0
        var total: Int64 = 0
        let ok = (data.filter { $0 != 0 } + [0]).withUnsafeBufferPointer { p in
            p.baseAddress!.withMemoryRebound(to: CChar.self, capacity: p.count) {
                hl_parse_content_range($0, &first, &last, &total)
            }
        }
        guard ok == 0 else { return }
        check(first >= 0 && first <= last && (total == -1 || last < total), "accepted \(first)-\(last)/\(total)")
    }

    /// The response rule: whatever a server answers, a body is written only
    /// for a 206 naming exactly the requested bytes (and a total, if given,
    /// that is the blob's), or for an allowed 200 whose length, if given, is
    /// the blob's. The first 24 bytes choose the status and the request;
    /// the rest is the Content-Range (absent when empty).
    static func response(_ data: [UInt8]) {
        guard data.count >= 24 else { return }
        func i64(_ at: Int) -> Int64 { data[at..<at + 8].reduce(0) { $0 << 8 | Int64($1) } & 0xFFFF_FFFF_FFFF }
        let status = [200, 206, 301, 416, 503, Int(data[0]) << 2][Int(data[1]) % 6]
        let start = i64(2) % 1_000_000
        let length = i64(10) % 1_000_000 + 1
        let total = start + length + Int64(data[18] & 3) - 1
        let request = hl_range_request(
            start: start, end: start + length, total: total, accept_full: Int32(data[19] & 1))
        let contentLength: Int64 = data[20] & 1 == 0 ? -1 : (data[21] & 1 == 0 ? total : i64(10))
        let header = Array(data[24...]).filter { $0 != 0 }
        let verdict =
            header.isEmpty
            ? hl_judge_response(status, nil, contentLength, request)
            : (header + [0]).withUnsafeBufferPointer { p in
                p.baseAddress!.withMemoryRebound(to: CChar.self, capacity: p.count) {
                    hl_judge_response(status, $0, contentLength, request)
                }
            }
        switch verdict {
        case HL_JUDGED_RANGE:
            var first: Int64 = 0
            var last: Int64 = 0
            var announced: Int64 = 0
            let parsed = (header + [0]).withUnsafeBufferPointer { p in
                p.baseAddress!.withMemoryRebound(to: CChar.self, capacity: p.count) {
                    hl_parse_content_range($0, &first, &last, &announced)
                }
            }
            check(
                status == 206 && parsed == 0 && first == start && last == start + length - 1
                    && (announced == -1 || announced == total),
                "took \(status) \(first)-\(last)/\(announced) for \(start)-\(start + length - 1)/\(total)")
        case HL_JUDGED_WHOLE:
            check(
                status == 200 && request.accept_full == 1 && (contentLength == -1 || contentLength == total),
                "took a 200 of \(contentLength) for a \(total)-byte blob")
        default:
            check(
                !(status == 206 && header.isEmpty) || verdict == HL_JUDGED_BAD_CONTENT_RANGE,
                "206 without Content-Range")
        }
    }

    /// Resume journals: whatever decodes is self-consistent and survives a
    /// round trip.
    static func journal(_ data: [UInt8]) {
        guard let j = try? ResumeJournal.decode(data) else { return }
        check(j.point.hashed <= j.point.ranges.contiguousPrefix, "hash state beyond the data")
        check(
            j.point.ranges.ranges.allSatisfy { $0.lowerBound >= 0 && $0.upperBound <= j.size }, "range outside the blob"
        )
        check((try? ResumeJournal.decode(j.encode())) == j, "journal does not round-trip")
    }

    /// WWW-Authenticate: parsing is bounded, schemes are lower-case
    /// tokens, and a challenge that names a realm keeps it free of the
    /// quoting that delimited it.
    static func wwwAuthenticate(_ data: [UInt8]) {
        let challenges = AuthChallenge.parse(String(decoding: data, as: UTF8.self))
        check(challenges.count <= 32, "\(challenges.count) challenges")
        for c in challenges {
            check(
                !c.scheme.isEmpty && c.scheme == c.scheme.lowercased() && !c.scheme.contains(" ")
                    && !c.scheme.contains(","),
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
            check(
                again.map(\.scheme) == challenges.map(\.scheme)
                    && again.map(\.parameters) == challenges.map(\.parameters),
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
        check(
            all.keyValues.count == counted?.keyValues.count && all.tensors == counted?.tensors, "the two reads differ")
        check(all.tensors.allSatisfy { $0.shape.count <= 8 }, "a tensor with too many dimensions")
        for (_, value) in all.keyValues {
            if case .array(let count, let values) = value {
                check(values == nil || values?.count == count, "array count")
            }
            if case .string(let s) = value { check(s.utf8.count <= 16 << 20, "string over the cap") }
        }
        let capabilities = ModelCapabilities.derive(
            config: [], gguf: all, hasProjector: false, template: "", family: "")
        check(Set(capabilities).count == capabilities.count, "repeated capabilities")
    }

    static func check(_ condition: Bool, _ message: @autoclosure () -> String) {
        if !condition { fatalError("fuzz invariant: \(message())") }
    }
}
#endif
