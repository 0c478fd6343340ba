internal import CShims

/// The Swift face of a C sink (`hl_sink`), where curl's write callback puts
/// a transfer's body: a file range written in place, or a capped memory
/// buffer. The C side owns the hot path and decides at the first body byte
/// whether the response is acceptable; this type only reads what it
/// recorded and lowers where a range stops. No `HL_SINK_*` number is used
/// anywhere else. Owned by one `Transfer`, on the loop thread.
struct Sink {
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
        /// A memory body over its limit.
        case tooLarge
        /// Reached `stopAt` on purpose: the rest of the range was split off.
        case stopped
        /// Would have written below the hash frontier (a bug, refused).
        case overlap
    }

    let raw: UnsafeMutablePointer<hl_sink>

    /// First requested byte.
    var start: Int64 { raw.pointee.start }
    /// Next byte to write: everything before it is on disk.
    var offset: Int64 { raw.pointee.offset }
    /// Next byte to receive: bytes between `offset` and this are held for
    /// alignment (a page carry, or a direct-I/O stage).
    var received: Int64 { raw.pointee.offset + Int64(raw.pointee.carry_len) }
    /// Exclusive end of the request (the blob's end once a 200 was taken).
    var end: Int64 { raw.pointee.end }
    /// Exclusive end the transfer stops at.
    var stopAt: Int64 { raw.pointee.stop_at }
    /// The response was seen and judged.
    var checked: Bool { raw.pointee.checked != 0 }
    var errno: Int32 { raw.pointee.err_no }

    var verdict: Verdict {
        switch Int(raw.pointee.reject) {
        case Int(HL_SINK_OK): return .accepted
        case Int(HL_SINK_BAD_STATUS): return .badStatus
        case Int(HL_SINK_BAD_CONTENT_RANGE): return .badContentRange
        case Int(HL_SINK_BAD_LENGTH): return .badLength
        case Int(HL_SINK_OVERLONG): return .overlong
        case Int(HL_SINK_WRITE_FAILED): return .writeFailed
        case Int(HL_SINK_TOO_LARGE): return .tooLarge
        case Int(HL_SINK_STOPPED): return .stopped
        default: return .overlap
        }
    }

    /// Lowers where the transfer stops to `cut`, or to just after the bytes
    /// it received but has not written yet; returns the new stop.
    @discardableResult
    func lowerStop(to cut: Int64) -> Int64 { hl_sink_lower_stop(raw, cut) }

    /// The transfer waits for tokens of the rate limit.
    var isPaused: Bool { raw.pointee.paused != 0 }

    func resume() { hl_sink_resume(raw) }

    /// Draws from `bucket` (the loop's rate limit) from now on.
    func limit(by bucket: UnsafeMutablePointer<hl_bucket>) { raw.pointee.bucket = bucket }

    /// Writes bytes held back for page alignment; the loop calls it when a
    /// transfer ends, before reading `offset`.
    func flush() { _ = hl_sink_flush(raw) }

    /// Direct I/O: writes the whole pages of a stage that is filling slowly.
    func drain() { _ = hl_sink_drain(raw) }

    /// The start of a refused response's body, for the error message.
    var errorBody: String {
        let length = Int(raw.pointee.error_body_len)
        return withUnsafeBytes(of: raw.pointee.error_body) { String(decoding: $0.prefix(length), as: UTF8.self) }
    }

    /// curl's error text for the transfer (its CURLOPT_ERRORBUFFER).
    var curlError: String {
        withUnsafeBytes(of: &raw.pointee.error) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
    }

    /// A memory sink's body.
    var body: [UInt8] { raw.pointee.mem.map { Array(UnsafeBufferPointer(start: $0, count: raw.pointee.mem_len)) } ?? [] }
    var memoryLimit: Int { raw.pointee.mem_limit }

    func free() { hl_sink_free(raw) }
}
