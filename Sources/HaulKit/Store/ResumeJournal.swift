/// The record that lets a partial blob be resumed, stored beside its data
/// file as `sha256-<hex>-partial.journal`. A small line-oriented text file,
/// so a user can read it and a fuzzer can hammer its parser:
///
///     haul-journal 1
///     digest sha256:<hex>
///     size <bytes>
///     model <name that started the download>
///     boot <kernel boot id>        (live journals only)
///     hashed <bytes> <hex of the 108-byte hash state, or ->
///     anchor <sha256 of the data's last 4 KiB before the hashed offset>
///     range <start> <end>          (one per run of bytes on disk)
///     check <sha256 of every line above>
///
/// The checksum catches a torn or edited file; every other field is checked
/// against the blob it claims to describe. The anchor ties the journal to
/// the data: the hash state stands for bytes that are not hashed again on
/// resume, so a data file changed behind the journal's back (truncated,
/// zero-filled, replaced) must not be resumed from it. (Journals written
/// before anchors existed have none and are checked on everything else.) A journal that fails any check is
/// ignored and the data re-fetched: it is never trusted blindly.
struct ResumeJournal: Equatable, Sendable {
    static let header = "haul-journal 1"
    /// Far above any real journal (a few runs per connection).
    static let maxBytes = 1 << 20
    static let maxRanges = 10_000

    var digest: Digest
    var size: Int64
    var model: String
    /// Set on a live journal: the boot it was written in (see
    /// `CheckpointWriter`).
    var boot: String?
    var point: ResumePoint
    /// SHA-256 of the data in `anchorRange(hashed:)`; nil when nothing is
    /// hashed (or the journal predates anchors).
    var anchor: Digest?

    /// The bytes an anchor covers: up to 4 KiB ending at the hashed offset.
    static func anchorRange(hashed: Int64) -> Range<Int64> { max(0, hashed - 4096)..<hashed }

    enum Invalid: Error, Equatable, CustomStringConvertible {
        case malformed(String)
        var description: String {
            switch self {
            case .malformed(let why): return why
            }
        }
    }

    func encode() -> [UInt8] {
        var text = "\(Self.header)\ndigest \(digest)\nsize \(size)\nmodel \(Self.clean(model))\n"
        if let boot { text += "boot \(Self.clean(boot))\n" }
        let state = point.hashState.map(Hex.encode) ?? "-"
        text += "hashed \(point.hashed) \(state)\n"
        if let anchor { text += "anchor \(anchor.hex)\n" }
        for r in point.ranges.ranges { text += "range \(r.lowerBound) \(r.upperBound)\n" }
        let body = Array(text.utf8)
        return body + Array("check \(Digest(bytes: SHA256.hash(body)).hex)\n".utf8)
    }

    static func decode(_ bytes: [UInt8]) throws(Invalid) -> ResumeJournal {
        guard bytes.count <= maxBytes else { throw .malformed("journal larger than \(maxBytes) bytes") }
        guard let text = String(validating: bytes, as: UTF8.self) else { throw .malformed("not UTF-8") }
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard lines.last == "" else { throw .malformed("truncated (no final newline)") }
        lines.removeLast()
        guard lines.count >= 6, lines[0] == header else { throw .malformed("not a haul journal") }
        let checkLine = lines.removeLast()
        let body = Array(lines.map { $0 + "\n" }.joined().utf8)
        guard checkLine == "check " + Digest(bytes: SHA256.hash(body)).hex else {
            throw .malformed("checksum mismatch (torn or edited)")
        }
        let digestText = try field(lines[1], "digest")
        guard let digest = try? Digest(parsing: digestText) else { throw .malformed("bad digest") }
        guard let size = Int64(try field(lines[2], "size")), size >= 0 else { throw .malformed("bad size") }
        let model = try field(lines[3], "model")
        var boot: String?
        if lines[4].hasPrefix("boot ") {
            boot = try field(lines.remove(at: 4), "boot")
            guard lines.count >= 5 else { throw .malformed("truncated") }
        }
        let hashedParts = try field(lines[4], "hashed").split(separator: " ", omittingEmptySubsequences: false)
        guard hashedParts.count == 2, let hashed = Int64(hashedParts[0]), (0...size).contains(hashed) else {
            throw .malformed("bad hash offset")
        }
        var state: [UInt8]?
        if hashedParts[1] != "-" {
            guard let decoded = Hex.decode(hashedParts[1]), decoded.count == SHA256State.size,
                SHA256State.offset(decoded) == hashed
            else { throw .malformed("bad hash state") }
            state = decoded
        } else if hashed != 0 {
            throw .malformed("hash offset without a state")
        }
        var anchor: Digest?
        if lines.count > 5, lines[5].hasPrefix("anchor ") {
            guard let hex = Hex.decode(try field(lines.remove(at: 5), "anchor")), hex.count == 32 else {
                throw .malformed("bad anchor")
            }
            anchor = Digest(bytes: hex)
        }
        var ranges = RangeSet()
        var previousEnd: Int64 = -1
        guard lines.count - 5 <= maxRanges else { throw .malformed("too many ranges") }
        for line in lines[5...] {
            let parts = try field(line, "range").split(separator: " ", omittingEmptySubsequences: false)
            guard parts.count == 2, let lo = Int64(parts[0]), let hi = Int64(parts[1]),
                lo > previousEnd, lo < hi, hi <= size
            else { throw .malformed("bad range \(HaulError.quoted(line, limit: 60))") }
            ranges.insert(lo..<hi)
            previousEnd = hi
        }
        guard hashed <= ranges.contiguousPrefix else { throw .malformed("hash state beyond the data on disk") }
        return ResumeJournal(
            digest: digest, size: size, model: model, boot: boot,
            point: ResumePoint(ranges: ranges, hashState: state), anchor: anchor)
    }

    private static func field(_ line: String, _ key: String) throws(Invalid) -> String {
        guard line.hasPrefix(key + " ") else { throw .malformed("expected \(key)") }
        return String(line.dropFirst(key.count + 1))
    }

    /// Model names are validated before they get here; this only keeps a
    /// newline from breaking the format.
    private static func clean(_ text: String) -> String {
        String(text.unicodeScalars.prefix(400).map { HaulError.isUnsafe($0) ? "?" : Character($0) })
    }
}
