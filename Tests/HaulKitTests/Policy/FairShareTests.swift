import Testing

@testable import HaulKit

/// A freed connection goes to the blob running the fewest ranges.
@Suite struct FairShareTests {
    @Test func theLeastServedBlobGoesFirstTheEarliestOnATie() {
        #expect(FairShare.order(running: [3, 1, 2, 1]) == [1, 3, 2, 0])
        #expect(FairShare.order(running: [0, 0, 0]) == [0, 1, 2])
        #expect(FairShare.order(running: []) == [])
    }
}
