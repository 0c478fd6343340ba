import Testing

@testable import HaulKit

@Suite struct PieceQueueTests {
    let mib: Int64 = 1 << 20

    func queue(size: Int64, written: RangeSet = RangeSet()) -> PieceQueue {
        PieceQueue(size: size, written: written, connections: 4, maxPiece: 8 << 20, minSize: 1 << 20)
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

    /// What one piece per connection holds beyond the hash frontier stays
    /// near 1/16 of the blob: the bytes a resume after a kill hashes again.
    @Test func piecesInFlightHoldAboutASixteenthOfTheBlob() {
        let size: Int64 = 2 << 30
        var q = PieceQueue(size: size, written: RangeSet(), connections: 16, maxPiece: 64 << 20, minSize: 1 << 20)
        let first = (0..<16).compactMap { _ in q.take(now: 0) }
        #expect(first.allSatisfy { $0.range.count == 8 << 20 })
        #expect(first.reduce(Int64(0)) { $0 + Int64($1.range.count) } <= size / 16)
        // A small blob still gets whole minimum pieces, a huge one the configured maximum.
        #expect(PieceQueue.pieceCap(size: 8 << 20, connections: 16, minSize: 1 << 20) == 1 << 20)
        #expect(PieceQueue.pieceCap(size: 64 << 30, connections: 16, minSize: 1 << 20) == 256 << 20)
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
