import Testing
@testable import HaulKit

@Suite struct PieceQueueTests {
    let mib: Int64 = 1 << 20

    func queue(size: Int64, written: RangeSet = RangeSet()) -> PieceQueue {
        PieceQueue(size: size, written: written, connections: 4, maxPiece: 8 << 20, minPiece: 1 << 20)
    }

    @Test func piecesTileTheGapsInOffsetOrder() {
        var q = queue(size: 50 * mib, written: RangeSet([(5 * mib)..<(10 * mib)]))
        var taken: [Range<Int64>] = []
        while let p = q.take(now: 0) { taken.append(p.range) }
        #expect(taken.map(\.lowerBound) == taken.map(\.lowerBound).sorted())
        var covered = RangeSet()
        for r in taken { covered.insert(r) }
        #expect(covered.ranges == [0..<(5 * mib), (10 * mib)..<(50 * mib)])
        #expect(taken.reduce(Int64(0)) { $0 + Int64($1.count) } == 45 * mib, "no overlap")
    }

    @Test func retriesComeFirstOnceDueAndInOffsetOrder() {
        var q = queue(size: 50 * mib)
        _ = q.take(now: 0)
        q.requeue(.init(range: (30 * mib)..<(31 * mib), attempts: 1, notBefore: 0))
        q.requeue(.init(range: (20 * mib)..<(21 * mib), attempts: 2, notBefore: 5))
        q.requeue(.init(range: (10 * mib)..<(11 * mib), attempts: 1, notBefore: 0))
        #expect(q.pending.map(\.range.lowerBound) == [10 * mib, 20 * mib, 30 * mib])
        #expect(q.earliestRetry == 0)
        #expect(q.take(now: 1)?.range.lowerBound == 10 * mib)
        #expect(q.take(now: 1)?.range.lowerBound == 30 * mib)
        #expect(q.take(now: 1)?.range.lowerBound != 20 * mib, "not before its backoff")
        #expect(q.take(now: 5)?.range.lowerBound == 20 * mib)
    }

    @Test func aSingleStreamRestartKeepsOnlyTheSealedPrefix() {
        var q = queue(size: 50 * mib, written: RangeSet([0..<(3 * mib), (7 * mib)..<(9 * mib)]))
        q.restartAsSingleStream(attempts: 2, notBefore: 4)
        #expect(q.written.ranges == [0..<(3 * mib)])
        #expect(q.pending == [.init(range: (3 * mib)..<(50 * mib), attempts: 2, notBefore: 4)])
        #expect(q.unassigned.isEmpty)
    }
}
