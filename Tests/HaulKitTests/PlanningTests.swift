import Testing
@testable import HaulKit

@Suite struct RangeSetTests {
    @Test func mergesOverlappingAndAdjacentRanges() {
        var s = RangeSet()
        s.insert(10..<20)
        s.insert(30..<40)
        #expect(s.ranges == [10..<20, 30..<40])
        s.insert(20..<30)
        #expect(s.ranges == [10..<40])
        s.insert(0..<5)
        s.insert(3..<12)
        #expect(s.ranges == [0..<40])
        #expect(s.count == 40)
        #expect(s.contiguousPrefix == 40)
    }

    @Test func prefixIsZeroUntilOffsetZeroLands() {
        var s = RangeSet([100..<200])
        #expect(s.contiguousPrefix == 0)
        s.insert(0..<50)
        #expect(s.contiguousPrefix == 50)
        #expect(s.gaps(in: 0..<250) == [50..<100, 200..<250])
        #expect(!s.contains(0..<101))
        #expect(s.contains(120..<200))
    }

    @Test func randomInsertsMatchABitmap() {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<50 {
            var s = RangeSet()
            var bits = [Bool](repeating: false, count: 300)
            for _ in 0..<20 {
                let a = Int.random(in: 0..<300, using: &rng), b = Int.random(in: a...300, using: &rng)
                s.insert(Int64(a)..<Int64(b))
                for i in a..<b { bits[i] = true }
            }
            #expect(s.count == Int64(bits.filter { $0 }.count))
            #expect(s.contiguousPrefix == Int64(bits.firstIndex(of: false) ?? 300))
            for (r1, r2) in zip(s.ranges, s.ranges.dropFirst()) { #expect(r1.upperBound < r2.lowerBound) }
        }
    }
}

@Suite struct SplitPolicyTests {
    @Test(arguments: [1, 1000, 1 << 20, (1 << 20) + 1, 300 << 20, (2 << 30) + 12345] as [Int64])
    func piecesTileTheBlobAndShrinkTowardTheEnd(size: Int64) {
        var at: Int64 = 0
        var sizes: [Int64] = []
        while at < size {
            let n = SplitPolicy.nextPieceSize(remaining: size - at, connections: 16, maxPiece: 64 << 20, minPiece: 4 << 20)
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
        #expect(SplitPolicy.nextPieceSize(remaining: 0, connections: 16, maxPiece: 64 << 20, minPiece: 4 << 20) == 0)
    }

    @Test func equalRatesSplitInHalf() throws {
        let cut = try #require(SplitPolicy.splitPoint(offset: 0, end: 64 << 20, rate: 10, newRate: 10, minPiece: 1 << 20))
        #expect(cut == 32 << 20)
    }

    @Test func aSlowRangeKeepsOnlyWhatItCanFinishInTime() throws {
        // A connection at a tenth of the peers' rate keeps ~1/11 of its rest.
        let cut = try #require(SplitPolicy.splitPoint(offset: 10 << 20, end: 120 << 20, rate: 1, newRate: 10, minPiece: 1 << 20))
        let kept = Double(cut - (10 << 20)), total = Double(110 << 20)
        #expect(abs(kept / total - 1.0 / 11.0) < 0.01)
        #expect(cut % SplitPolicy.alignment == 0)
    }

    @Test func tinyRemaindersAreNotSplit() {
        #expect(SplitPolicy.splitPoint(offset: 0, end: 1 << 20, rate: 10, newRate: 10, minPiece: 1 << 20) == nil)
        #expect(SplitPolicy.splitPoint(offset: 5, end: 5 + (3 << 19), rate: 10, newRate: 10, minPiece: 1 << 20) == nil)
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
