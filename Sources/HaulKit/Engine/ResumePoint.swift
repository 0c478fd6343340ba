/// Where a blob download can restart: the byte ranges known to be in its
/// data file, and the SHA-256 state of the prefix already hashed, so a
/// resumed download neither fetches nor re-hashes what it had.
struct ResumePoint: Sendable, Equatable {
    var ranges: RangeSet
    /// Go `MarshalBinary` encoding (108 bytes) of the hash of `[0, hashed)`;
    /// nil when nothing has been hashed.
    var hashState: [UInt8]?
    var hashed: Int64 { hashState.map(SHA256State.offset) ?? 0 }

    static let empty = ResumePoint(ranges: RangeSet(), hashState: nil)
}

/// Receives a blob's checkpoints from the loop thread. Calls must not block:
/// the receiver writes them elsewhere.
protocol CheckpointSink: Sendable {
    /// A newer state to make durable; the receiver may skip older ones.
    func checkpoint(_ point: ResumePoint)
    /// The loop is done with the blob and its file descriptor: `point` is
    /// the last state to keep (nil when the blob completed). Called exactly
    /// once per job, before the job's event stream ends.
    func finish(_ point: ResumePoint?)
}
