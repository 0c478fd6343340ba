import Testing

@testable import HaulKit

/// Splits, steals and abandons across running ranges, from snapshots.
@Suite struct RebalancerTests {
    let mib: Int64 = 1 << 20
    let rebalancer = Rebalancer(config: EngineConfiguration())

    func flight(
        _ n: UInt64, offset: Int64 = 0, end: Int64, rate: Double?, started: Double = 0,
        lastByte: Double = 10, lastSplit: Double = 0
    ) -> Rebalancer.Running {
        Rebalancer.Running(
            blob: 1, transfer: n, offset: offset, stopAt: end, rate: rate, startedAt: started,
            lastByteAt: lastByte, lastSplitAt: lastSplit)
    }

    @Test func aSlowTailIsSplitSoBothHalvesFinishTogether() throws {
        let fast = 20.0 * Double(mib)
        let flights = [
            flight(1, end: 64 * mib, rate: fast), flight(2, end: 64 * mib, rate: fast),
            flight(3, end: 64 * mib, rate: fast / 20)
        ]
        let actions = rebalancer.rebalance(flights, now: 10)
        guard case .split(_, 3, let cut)? = actions.first, actions.count == 1 else {
            Issue.record("expected one split of the slow range, got \(actions)")
            return
        }
        // Kept part at 1/21 of the remainder, page aligned.
        #expect(cut > 0 && cut < 4 * mib && cut % SplitPolicy.alignment == 0)
    }

    @Test func noSplitBeforeTheGracePeriodOrTooSoonAfterTheLast() {
        let fast = 20.0 * Double(mib)
        let young = [flight(1, end: 64 * mib, rate: fast), flight(2, end: 64 * mib, rate: fast / 5, started: 9.5)]
        #expect(rebalancer.rebalance(young, now: 10).isEmpty)
        let justSplit = [flight(1, end: 64 * mib, rate: fast), flight(2, end: 64 * mib, rate: fast / 5, lastSplit: 8)]
        #expect(rebalancer.rebalance(justSplit, now: 10).isEmpty)
        #expect(rebalancer.rebalance([flight(1, end: 64 * mib, rate: 1)], now: 10).isEmpty, "no peers, no judgement")
    }

    @Test func aSilentConnectionIsAbandonedWhileOthersReceive() {
        let flights = [
            flight(1, end: 64 * mib, rate: 1e7, lastByte: 9.9),
            flight(2, end: 64 * mib, rate: 0, lastByte: 5)
        ]
        #expect(
            rebalancer.rebalance(flights, now: 10)
                == [.abandon(blob: 1, transfer: 2, why: "no data for 5 s while other connections receive")])
        let allSilent = flights.map { flight($0.transfer, end: 64 * mib, rate: 0, lastByte: 5) }
        #expect(rebalancer.rebalance(allSilent, now: 10).isEmpty, "a dead network is curl's stall timeout's job")
    }

    @Test func anIdleConnectionStealsFromTheRangeExpectedToFinishLast() {
        let flights = [
            flight(1, end: 8 * mib, rate: 4e6), flight(2, offset: 8 * mib, end: 72 * mib, rate: 4e6),
            flight(3, end: 2 * mib, rate: 4e6)
        ]
        guard case .split(_, 2, let cut)? = rebalancer.steal(flights) else {
            Issue.record("no steal")
            return
        }
        #expect(cut == 40 * mib, "equal rates: halves")
    }

    /// Before a byte has arrived nothing says which range finishes last: a
    /// steal then only aborts a response in flight and fetches its bytes
    /// twice (a 16 MiB blob on 16 connections was sent twice this way).
    @Test func nothingIsStolenBeforeAnyRateIsKnown() {
        let fresh = [flight(1, end: 64 * mib, rate: nil), flight(2, offset: 64 * mib, end: 128 * mib, rate: nil)]
        #expect(rebalancer.steal(fresh) == nil)
        var informed = rebalancer
        informed.completed(bytes: 8 * mib, seconds: 1)
        #expect(informed.steal(fresh) != nil, "a rate from finished pieces is enough")
    }

    @Test func aRangeAboutToFinishIsNotStolen() {
        #expect(rebalancer.steal([flight(1, end: 2 * mib, rate: 1e8)]) == nil)
    }

    @Test func finishedPiecesSetTheExpectedRate() {
        var r = rebalancer
        #expect(r.expectedRate(peers: []) == nil)
        r.completed(bytes: 100 * mib, seconds: 1)
        r.completed(bytes: 1024, seconds: 1)
        #expect(r.expectedRate(peers: []) == Double(100 * mib), "tiny pieces say nothing about rates")
        #expect(r.expectedRate(peers: [1e9]) == 1e9)
    }
}
