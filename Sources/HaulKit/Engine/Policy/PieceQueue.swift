/// Which bytes of one blob are on disk and which to fetch next, as plain
/// values: no I/O, no clock of its own (callers pass `now`).
///
/// Pieces go out in offset order (retries and split-off parts first, once
/// their backoff passed), so the hash frontier keeps moving right behind
/// the connections.
struct PieceQueue {
    struct Piece: Equatable {
        var range: Range<Int64>
        /// Failed attempts of this range without progress in between.
        var attempts = 0
        /// Not to be fetched before this time (a retry's backoff).
        var notBefore = 0.0
        /// Waiting out a server's refusal (429/503) while it served the
        /// blob's other ranges: due as soon as one of those ends.
        var refused = false
    }

    let size: Int64
    /// Ranges known to be on disk.
    private(set) var written: RangeSet
    /// Ranges to fetch again (retries, split-off parts), in offset order.
    private(set) var pending: [Piece] = []
    /// Ranges not handed out yet, in offset order: the gaps a resumed
    /// download still misses, or the whole blob.
    private(set) var unassigned: [Range<Int64>]
    private let connections: Int
    private let maxPiece: Int64
    private let minSize: Int64

    init(size: Int64, written: RangeSet, connections: Int, maxPiece: Int64, minSize: Int64) {
        self.size = size
        self.written = written
        self.unassigned = written.gaps(in: 0..<size)
        self.connections = connections
        self.maxPiece = min(maxPiece, Self.pieceCap(size: size, connections: connections, minSize: minSize))
        self.minSize = minSize
    }

    /// Pieces go out in offset order, so what is on disk beyond the hash
    /// frontier is at most about one piece per connection; a kill leaves
    /// those bytes to be hashed again on resume. Pieces of at most 1/16 of
    /// the blob per connection keep that near 1/16 of the blob (bench
    /// scenario 6) at the cost of more requests per blob (a 2 GiB blob on 16
    /// connections: 8 MiB pieces, not 64).
    static func pieceCap(size: Int64, connections: Int, minSize: Int64) -> Int64 {
        let cap = size / Int64(16 * max(connections, 1))
        return max(minSize, cap / SplitPolicy.alignment * SplitPolicy.alignment)
    }

    var hasWork: Bool { !pending.isEmpty || !unassigned.isEmpty }
    var earliestRetry: Double? { pending.lazy.map(\.notBefore).min() }
    var isComplete: Bool { written.count == size }

    mutating func record(_ range: Range<Int64>) { written.insert(range) }

    /// The next range to fetch: a retry or split-off part whose backoff has
    /// passed, else a new piece cut from the front of the unassigned bytes.
    mutating func take(now: Double) -> Piece? {
        if let index = pending.firstIndex(where: { $0.notBefore <= now }) {
            return pending.remove(at: index)
        }
        guard let gap = unassigned.first else { return nil }
        let remaining = unassigned.reduce(Int64(0)) { $0 + Int64($1.count) }
        var length = min(
            Int64(gap.count),
            SplitPolicy.nextPieceSize(
                remaining: remaining, connections: connections,
                maxPiece: maxPiece, minSize: minSize))
        if Int64(gap.count) - length < minSize / 2 { length = Int64(gap.count) }
        let piece = gap.lowerBound..<gap.lowerBound + length
        if piece == gap { unassigned.removeFirst() } else { unassigned[0] = piece.upperBound..<gap.upperBound }
        return Piece(range: piece)
    }

    /// Puts a range back, in offset order.
    mutating func requeue(_ piece: Piece) {
        guard !piece.range.isEmpty else { return }
        let index = pending.firstIndex { $0.range.lowerBound > piece.range.lowerBound } ?? pending.endIndex
        pending.insert(piece, at: index)
    }

    /// A range of the blob ended at the server: the ranges waiting out its
    /// refusals may go now (the server has a connection free).
    mutating func releaseRefused(now: Double) {
        for i in pending.indices where pending[i].refused && pending[i].notBefore > now {
            pending[i].notBefore = now
        }
    }

    /// Forgets every range not handed out: a single stream brings them.
    mutating func dropUnstarted() {
        pending.removeAll()
        unassigned.removeAll()
    }

    /// A server that ignores Range resends the blob from its first byte.
    /// Bytes below the sealed (contiguous, possibly hashed) prefix are never
    /// written again: the stream's copy of them is dropped. Everything held
    /// above it is forgotten and comes from the new stream, so the file ends
    /// up holding each byte exactly once, as it was hashed. Call with no
    /// transfer of this blob running.
    mutating func restartAsSingleStream(attempts: Int, notBefore: Double) {
        let sealed = written.contiguousPrefix
        written = RangeSet(sealed > 0 ? [0..<sealed] : [])
        unassigned.removeAll()
        pending = sealed < size ? [Piece(range: sealed..<size, attempts: attempts, notBefore: notBefore)] : []
    }
}
