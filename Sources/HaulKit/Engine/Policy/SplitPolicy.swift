/// Decisions about cutting byte ranges into pieces, kept free of I/O so they
/// can be tested on their own.
///
/// The tail problem (ollama/ollama#1736, "stuck at 99%") is that a range stuck on a slow
/// connection finishes long after the others. Two rules prevent it: a
/// connection that falls idle takes over the back part of the range with the
/// most time left, and a connection much slower than its peers has its
/// remainder split even while others are busy. In both cases the cut is
/// placed where the two halves finish together given their rates.
enum SplitPolicy {
    /// Split points are multiples of this, so pieces stay page-aligned.
    static let alignment: Int64 = 64 << 10

    /// The size of the next piece to hand a connection, cut from the front
    /// of the `remaining` unassigned bytes (guided self-scheduling): a
    /// fraction of what is left, so pieces are large while there is plenty to
    /// do and shrink toward the end, where connections then finish close
    /// together without having to abort each other's ranges. Pieces go out
    /// in offset order, so the hash frontier trails the fastest connection by
    /// about connections x piece size.
    static func nextPieceSize(remaining: Int64, connections: Int, maxPiece: Int64, minSize: Int64) -> Int64 {
        guard remaining > 0 else { return 0 }
        var piece = remaining / Int64(2 * max(connections, 1))
        piece = (piece + alignment - 1) / alignment * alignment
        piece = min(maxPiece, max(minSize, piece))
        // Never leave a runt behind.
        return remaining - piece < minSize / 2 ? remaining : piece
    }

    /// Where a new connection expected to run at `newRate` should start
    /// taking over `[offset, end)` from one running at `rate`, so that both
    /// finish at the same time; nil if the part taken would be smaller than
    /// `minSplit` or the part kept would be trivial.
    static func splitPoint(offset: Int64, end: Int64, rate: Double, newRate: Double, minSplit: Int64) -> Int64? {
        let remaining = end - offset
        guard remaining >= 2 * minSplit || (remaining >= minSplit + alignment && rate < newRate) else { return nil }
        let r = max(rate, 1)
        let n = max(newRate, 1)
        let keep = Double(remaining) * r / (r + n)
        var cut = offset + Int64(keep)
        cut = (cut + alignment - 1) / alignment * alignment
        cut = max(cut, offset + alignment)
        guard end - cut >= minSplit else { return nil }
        return cut
    }

    /// A connection is slow when, after a grace period, it runs at less than
    /// `fraction` of the median rate of its peers. One ten times slower than
    /// its peers is unmistakable sooner: it gets half the grace (measured in
    /// bench scenario 4, where every tenth connection runs at 1/20).
    static func isSlow(rate: Double, peerMedian: Double, age: Double, grace: Double = 1.0, fraction: Double = 0.3)
        -> Bool
    {
        guard peerMedian > 0, rate < peerMedian * fraction else { return false }
        return age >= (rate < peerMedian * 0.1 ? grace / 2 : grace)
    }

    static func median(_ values: [Double]) -> Double? {
        guard !values.isEmpty else { return nil }
        let s = values.sorted()
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }
}
