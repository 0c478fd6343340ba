/// How many bytes one blob's upload may send before it gives up: twice
/// the blob plus one chunk. Every loop that sends a blob's bytes again
/// (after a cut connection, a 5xx, a registry that kept less than it was
/// sent) spends from it, so a registry that acknowledges one byte per
/// chunk, or drops every session half-way, ends the push with an error
/// instead of sending the blob forever. Counted before each send: bytes
/// that a failed request may not have sent count too, which only ends a
/// hopeless upload sooner.
struct ResendBudget: Sendable, Equatable {
    /// The blob's size.
    let size: Int64
    /// Bytes sent (or attempted) so far.
    private(set) var sent: Int64 = 0

    /// Spends `count` bytes of a plan whose chunks are `chunk` bytes:
    /// false, spending nothing, when that would pass the limit.
    mutating func spend(_ count: Int64, chunk: Int64) -> Bool {
        let limit = Self.limit(size: size, chunk: chunk)
        let (total, overflow) = sent.addingReportingOverflow(count)
        guard !overflow, total <= limit else { return false }
        sent = total
        return true
    }

    /// `2 × size + chunk`, saturating (sizes and chunks are bounded by
    /// their readers far below this, so it never saturates in practice).
    static func limit(size: Int64, chunk: Int64) -> Int64 {
        let (twice, o1) = max(0, size).multipliedReportingOverflow(by: 2)
        let (sum, o2) = twice.addingReportingOverflow(max(0, chunk))
        return o1 || o2 ? .max : sum
    }
}
