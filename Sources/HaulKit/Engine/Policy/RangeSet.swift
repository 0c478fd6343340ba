/// A set of byte offsets kept as sorted, disjoint, non-adjacent half-open
/// ranges. Tracks which parts of a blob are on disk.
struct RangeSet: Equatable, Sendable {
    private(set) var ranges: [Range<Int64>] = []

    init(_ ranges: [Range<Int64>] = []) {
        for r in ranges { insert(r) }
    }

    /// Number of bytes covered.
    var count: Int64 { ranges.reduce(0) { $0 + Int64($1.count) } }

    /// End of the run that starts at 0 (0 when offset 0 is not covered).
    var contiguousPrefix: Int64 {
        guard let first = ranges.first, first.lowerBound == 0 else { return 0 }
        return first.upperBound
    }

    mutating func insert(_ r: Range<Int64>) {
        guard !r.isEmpty else { return }
        // First range whose end reaches r's start: everything before it is
        // strictly left of r and not adjacent.
        var lo = 0
        var hi = ranges.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if ranges[mid].upperBound < r.lowerBound { lo = mid + 1 } else { hi = mid }
        }
        var merged = r
        var end = lo
        while end < ranges.count, ranges[end].lowerBound <= merged.upperBound {
            merged = min(merged.lowerBound, ranges[end].lowerBound)..<max(merged.upperBound, ranges[end].upperBound)
            end += 1
        }
        ranges.replaceSubrange(lo..<end, with: [merged])
    }

    /// The parts of `r` not covered by the set, in order.
    func gaps(in r: Range<Int64>) -> [Range<Int64>] {
        var out: [Range<Int64>] = []
        var at = r.lowerBound
        for c in ranges where c.upperBound > at {
            if c.lowerBound >= r.upperBound { break }
            if c.lowerBound > at { out.append(at..<min(c.lowerBound, r.upperBound)) }
            at = max(at, c.upperBound)
            if at >= r.upperBound { break }
        }
        if at < r.upperBound { out.append(at..<r.upperBound) }
        return out
    }

    func contains(_ r: Range<Int64>) -> Bool { gaps(in: r).isEmpty }
}
