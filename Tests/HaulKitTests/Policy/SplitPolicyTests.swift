import Testing

@testable import HaulKit

@Suite struct SplitPolicyTests {
    @Test(arguments: [1, 1000, 1 << 20, (1 << 20) + 1, 300 << 20, (2 << 30) + 12345] as [Int64])
    func piecesTileTheBlobAndShrinkTowardTheEnd(size: Int64) {
        var at: Int64 = 0
        var sizes: [Int64] = []
        while at < size {
            let n = SplitPolicy.nextPieceSize(
                remaining: size - at, connections: 16, maxPiece: 64 << 20, minSize: 4 << 20)
            #expect(n > 0 && n <= 64 << 20 || n == size - at)
            sizes.append(n)
            at += n
        }
        #expect(at == size)
        // Non-increasing, except that a runt tail is folded into the last piece.
        let body = Array(sizes.dropLast())
        #expect(body == body.sorted(by: >))
        #expect(sizes.last! <= (body.last ?? size) + (2 << 20))
        if size >= 256 << 20 {
            #expect(sizes.count >= 32)
            #expect(sizes.last! <= 6 << 20)
        }
        #expect(SplitPolicy.nextPieceSize(remaining: 0, connections: 16, maxPiece: 64 << 20, minSize: 4 << 20) == 0)
    }

    @Test func equalRatesSplitInHalf() throws {
        let cut = try #require(
            SplitPolicy.splitPoint(offset: 0, end: 64 << 20, rate: 10, newRate: 10, minSplit: 1 << 20))
        #expect(cut == 32 << 20)
    }

    @Test func aSlowRangeKeepsOnlyWhatItCanFinishInTime() throws {
        // A connection at a tenth of the peers' rate keeps ~1/11 of its rest.
        let cut = try #require(
            SplitPolicy.splitPoint(offset: 10 << 20, end: 120 << 20, rate: 1, newRate: 10, minSplit: 1 << 20))
        let kept = Double(cut - (10 << 20))
        let total = Double(110 << 20)
        #expect(abs(kept / total - 1.0 / 11.0) < 0.01)
        #expect(cut % SplitPolicy.alignment == 0)
    }

    @Test func tinyRemaindersAreNotSplit() {
        #expect(SplitPolicy.splitPoint(offset: 0, end: 1 << 20, rate: 10, newRate: 10, minSplit: 1 << 20) == nil)
        #expect(SplitPolicy.splitPoint(offset: 5, end: 5 + (3 << 19), rate: 10, newRate: 10, minSplit: 1 << 20) == nil)
    }

    @Test func slownessNeedsAGracePeriodAndAClearGap() {
        #expect(SplitPolicy.isSlow(rate: 1, peerMedian: 10, age: 1.5))
        #expect(!SplitPolicy.isSlow(rate: 1, peerMedian: 10, age: 0.5))
        #expect(!SplitPolicy.isSlow(rate: 5, peerMedian: 10, age: 3))
        // Far slower: half the grace.
        #expect(SplitPolicy.isSlow(rate: 0.5, peerMedian: 10, age: 0.5))
        #expect(!SplitPolicy.isSlow(rate: 0.5, peerMedian: 10, age: 0.4))
        #expect(SplitPolicy.median([3, 1, 2]) == 2)
        #expect(SplitPolicy.median([4, 1, 2, 3]) == 2.5)
    }
}
