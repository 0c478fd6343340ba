internal import CShims

/// Where a range request's body goes: the C file sink (`hl_sink`), which
/// judges the response at its first body byte (`hl_judge_response`) and
/// then writes each chunk in place and offers it to the hash frontier.
/// This type owns the C sink (freed when the sink is dropped, which is when
/// its `Transfer` goes) and reads it through one snapshot call. No
/// `HL_SINK_*` number is used anywhere else.
struct Sink: ~Copyable {
    /// Why the C side stopped taking bytes, if it did.
    enum Verdict: Equatable {
        /// Taking bytes (or the response not seen yet).
        case accepted
        /// A status this request cannot use (a redirect, an error, a 200 where
        /// only a 206 fits).
        case badStatus
        /// A 206 whose Content-Range is missing or not the request's.
        case badContentRange
        /// A 200 whose Content-Length is not the blob's size.
        case badLength
        /// More body than requested.
        case overlong
        /// pwrite failed; see `errno`.
        case writeFailed
        /// Reached `stopAt` on purpose: the rest of the range was split off.
        case stopped
        /// Would have written below the hash frontier (a bug, refused).
        case overlap

        init(_ raw: Int32) {
            switch Int(raw) {
            case Int(HL_SINK_OK): self = .accepted
            case Int(HL_SINK_BAD_STATUS): self = .badStatus
            case Int(HL_SINK_BAD_CONTENT_RANGE): self = .badContentRange
            case Int(HL_SINK_BAD_LENGTH): self = .badLength
            case Int(HL_SINK_OVERLONG): self = .overlong
            case Int(HL_SINK_WRITE_FAILED): self = .writeFailed
            case Int(HL_SINK_STOPPED): self = .stopped
            default: self = .overlap
            }
        }
    }

    /// What the loop reads of a sink, copied out at once.
    struct State {
        /// First requested byte.
        var start: Int64
        /// Next byte to write: everything before it is on disk.
        var offset: Int64
        /// Next byte to receive: bytes between `offset` and this are held
        /// for alignment (a page carry, or a direct-I/O stage).
        var received: Int64
        /// Exclusive end of the request (the blob's end once a 200 was taken).
        var end: Int64
        /// Exclusive end the transfer stops at.
        var stopAt: Int64
        /// The response was seen and judged.
        var checked: Bool
        var verdict: Verdict
        /// errno of a failed write.
        var errno: Int32
        /// The transfer waits for tokens of the rate limit.
        var isPaused: Bool
    }

    private let raw: OpaquePointer

    /// A sink for `range` of a `total`-byte file open at `fd`, offering its
    /// bytes to `hasher`. With `acceptFull`, a 200 carrying the whole file
    /// is taken too (the caller allows it only while nothing from
    /// `range.lowerBound` on is held).
    init?(fd: Int32, range: Range<Int64>, total: Int64, acceptFull: Bool, hasher: Hasher?) {
        let request = hl_range_request(
            start: range.lowerBound, end: range.upperBound, total: total,
            accept_full: acceptFull ? 1 : 0)
        guard let raw = hl_sink_new(fd, request, hasher?.raw) else { return nil }
        self.raw = raw
    }

    deinit { hl_sink_free(raw) }

    /// Makes this sink `easy`'s write callback.
    func attach(to easy: OpaquePointer) { hl_sink_attach(raw, easy) }

    var state: State {
        var s = hl_sink_state()
        hl_sink_snapshot(raw, &s)
        return State(
            start: s.start, offset: s.offset, received: s.received, end: s.end, stopAt: s.stop_at,
            checked: s.checked != 0, verdict: Verdict(s.verdict), errno: s.err_no, isPaused: s.paused != 0)
    }

    var offset: Int64 { state.offset }
    var received: Int64 { state.received }

    /// Lowers where the transfer stops to `cut`, or to just after the bytes
    /// it received but has not written yet; returns the new stop.
    @discardableResult
    func lowerStop(to cut: Int64) -> Int64 { hl_sink_lower_stop(raw, cut) }

    func resume() { hl_sink_resume(raw) }

    /// Draws from `bucket` (the loop's rate limit) from now on.
    func limit(by bucket: UnsafeMutablePointer<hl_bucket>) { hl_sink_limit(raw, bucket) }

    /// Direct I/O: writes go past the page cache through `fd` from `stage`
    /// (aligned, `capacity` bytes), which must outlive the sink.
    func useDirect(fd: Int32, stage: UnsafeMutableRawPointer, capacity: Int) {
        hl_sink_use_direct(raw, fd, stage.assumingMemoryBound(to: UInt8.self), capacity)
    }

    /// Writes bytes held back for page alignment; the loop calls it when a
    /// transfer ends, before reading `offset`.
    func flush() { _ = hl_sink_flush(raw) }

    /// Direct I/O: writes the whole pages of a stage that is filling slowly.
    func drain() { _ = hl_sink_drain(raw) }

    /// The start of a refused response's body, for the error message.
    var errorBody: String {
        var length = 0
        let bytes = hl_sink_error_body(raw, &length)
        return bytes.map { String(decoding: UnsafeRawBufferPointer(start: $0, count: length), as: UTF8.self) } ?? ""
    }
}

/// A response body kept in memory up to a limit (the C `hl_body`): a
/// manifest, a token, an error document. Owned by its `Transfer`.
struct ResponseBody: ~Copyable {
    private let raw: OpaquePointer

    /// Attaches a body of at most `limit` bytes to `easy`.
    init?(easy: OpaquePointer, limit: Int) {
        guard let raw = hl_body_new(easy, limit) else { return nil }
        self.raw = raw
    }

    deinit { hl_body_free(raw) }

    var bytes: [UInt8] {
        var length = 0
        guard let p = hl_body_bytes(raw, &length) else { return [] }
        return Array(UnsafeBufferPointer(start: p, count: length))
    }

    var limit: Int { hl_body_limit(raw) }
    /// The response was longer than `limit`; the transfer was aborted.
    var tooLarge: Bool { hl_body_too_large(raw) != 0 }
}
