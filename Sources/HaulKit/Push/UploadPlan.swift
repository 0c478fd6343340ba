import Foundation

/// What to send next for one blob upload session, decided from what the
/// registry says it holds: pure, so the rules are tested without sockets.
///
/// The distribution spec's chunked upload: `PATCH`es in order, each with
/// `Content-Range: <start>-<end>` (inclusive), at least the registry's
/// `OCI-Chunk-Min-Length` bytes except the last, each answered with the
/// session's new `Location` and `Range: 0-<last byte held>`; then
/// `PUT <location>?digest=<digest>`. A blob no larger than one chunk goes
/// as one `PUT` with its body (the spec's monolithic upload after POST).
struct UploadPlan: Sendable, Equatable {
    /// The blob's size.
    let size: Int64
    /// Bytes per PATCH (the registry's minimum wins when it is larger).
    let chunk: Int64

    /// 64 MiB: measured against distribution (bench scenario 14), 16 MiB
    /// chunks reached 0.86× a monolithic PUT and 64 MiB 0.95× (it saves
    /// and reloads its hash state at every PATCH); a registry keeps a cut
    /// chunk's bytes or drops the whole session, so smaller chunks buy
    /// little on resume. `--chunk-size` lowers it for proxies with body
    /// limits.
    static let defaultChunk: Int64 = 64 << 20

    init(size: Int64, chunk: Int64 = Self.defaultChunk, registryMinimum: Int64? = nil) {
        self.size = size
        // The registry's minimum is bounded by its reader (`chunkMinimum`).
        self.chunk = max(1, max(chunk, registryMinimum ?? 0))
    }

    enum Step: Sendable, Equatable {
        /// PATCH bytes `range` of the blob.
        case patch(Range<Int64>)
        /// PUT `?digest=`, sending bytes `range` (empty when all are held).
        case finish(Range<Int64>)
    }

    /// The next request when the registry holds the first `held` bytes.
    func next(held: Int64) -> Step {
        let start = min(max(0, held), size)
        // The rest fits in one request: send it with the closing PUT.
        if size - start <= chunk { return .finish(start..<size) }
        return .patch(start..<(start + chunk))
    }

    /// The byte count a registry's `Range` header says it holds: `0-<last>`
    /// (some registries write `bytes=0-<last>`) is `last + 1`, except `0-0`,
    /// which distribution writes for an empty session as for one byte
    /// (`registry/handlers/blobupload.go`): read as 0, since a chunk is
    /// never one byte and resending a byte costs nothing. Nil for no header
    /// or anything that is not a session's progress (a range not from 0).
    /// A `0-<last>` whose `last` is not a byte of a blob Haul could hold
    /// (above `Manifest.maxBlobSize`, or not a number) is an error naming
    /// `sender`: `0-9223372036854775807` plus one would trap.
    static func held(fromRange header: String?, from sender: String) throws(WireNumber.Invalid) -> Int64? {
        guard var text = header?.trimmingCharacters(in: .whitespaces), !text.isEmpty else { return nil }
        if text.hasPrefix("bytes=") { text.removeFirst(6) }
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[0] == "0" else { return nil }
        let bounds: ClosedRange<Int64> = 0...(Manifest.maxBlobSize - 1)
        guard let last = WireNumber.parse(parts[1], in: bounds) else {
            throw WireNumber.Invalid(
                sender: sender, field: "Range", value: HaulError.quoted(String(header!.prefix(64))), bounds: bounds)
        }
        return last == 0 ? 0 : last + 1
    }
}
