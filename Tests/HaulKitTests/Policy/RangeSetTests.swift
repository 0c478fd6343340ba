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
                let a = Int.random(in: 0..<300, using: &rng)
                let b = Int.random(in: a...300, using: &rng)
                s.insert(Int64(a)..<Int64(b))
                for i in a..<b { bits[i] = true }
            }
            #expect(s.count == Int64(bits.filter { $0 }.count))
            #expect(s.contiguousPrefix == Int64(bits.firstIndex(of: false) ?? 300))
            for (r1, r2) in zip(s.ranges, s.ranges.dropFirst()) { #expect(r1.upperBound < r2.lowerBound) }
        }
    }
}
