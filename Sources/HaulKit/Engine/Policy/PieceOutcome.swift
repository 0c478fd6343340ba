/// How one range request ended, as the loop read it off curl and the sink:
/// everything the policy needs to decide what happens next, and nothing
/// that would let it touch the transfer.
struct PieceOutcome: Equatable {
    var url: String
    /// First requested byte, next byte to write, and where the range was
    /// to stop (the sink's `start`, `offset`, `stopAt`).
    var start: Int64
    var offset: Int64
    var stopAt: Int64
    /// The HTTP status (0 when no response arrived).
    var status = 0
    var verdict: Sink.Verdict = .accepted
    /// The response was seen and judged (its first body byte or its end).
    var checked = true
    /// curl reported the transfer complete (CURLE_OK).
    var completed = true
    /// Retrying cannot help (response headers over curl's limit).
    var unretryable = false
    /// The failure in words a user can act on (empty on success).
    var why = ""
    /// `pwrite`'s errno when the verdict is `.writeFailed`.
    var writeErrno: Int32 = 0
    /// A 3xx's Location, resolved against the request URL.
    var redirectURL: String?
    /// The blob size the server announced in a refused response.
    var servedSize: Int64?
    var retryAfter: String?
    var challenge: String?

    /// Bytes of the range not received.
    var remainder: Range<Int64> { offset..<max(offset, stopAt) }
    var madeProgress: Bool { offset > start }
}
