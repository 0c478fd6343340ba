/// Keeps the tail short across every running range, as plain values: an
/// idle connection takes over the back part of the range expected to
/// finish last (a steal), a connection much slower than its peers has its
/// remainder split off (ollama/ollama#1736, "stuck at 99%"), and one that
/// went silent while its peers receive is abandoned. The loop passes
/// snapshots of its transfers and carries out the actions.
struct Rebalancer {
    /// A running range request of a splittable blob.
    struct Running: Equatable {
        let blob: UInt64
        let transfer: UInt64
        let offset: Int64
        let stopAt: Int64
        let rate: Double?
        let startedAt: Double
        let lastByteAt: Double
        let lastSplitAt: Double
    }

    enum Action: Equatable {
        /// Lower the range's end to `at`; the rest goes to another connection.
        case split(blob: UInt64, transfer: UInt64, at: Int64)
        /// Give the range's remainder to a fresh connection.
        case abandon(blob: UInt64, transfer: UInt64, why: String)
    }

    private let minSplitSize: Int64
    private let minStealSeconds: Double
    private let peerStallSeconds: Double
    /// Seconds between two splits of one range.
    static let splitSpacing = 3.0
    /// Throughput of recently completed pieces (EWMA): what a fresh
    /// connection can be expected to do, even when few are running.
    private(set) var typicalRate: Double?

    init(config: EngineConfiguration) {
        minSplitSize = config.minSplitSize
        minStealSeconds = config.minStealSeconds
        peerStallSeconds = MonotonicClock.seconds(config.peerStall)
    }

    /// A range completed: `bytes` in `seconds`.
    mutating func completed(bytes: Int64, seconds: Double) {
        guard bytes >= 1 << 20, seconds > 0.05 else { return }
        let rate = Double(bytes) / seconds
        typicalRate = typicalRate.map { 0.7 * $0 + 0.3 * rate } ?? rate
    }

    /// The rate to expect of a connection: the better of what running peers
    /// do now and what finished pieces did.
    func expectedRate(peers: [Double]) -> Double? {
        switch (SplitPolicy.median(peers), typicalRate) {
        case (let m?, let t?): return max(m, t)
        case (let m?, nil): return m
        case (nil, let t?): return t
        default: return nil
        }
    }

    /// For a free connection: the split that gives it the back part of the
    /// range expected to finish last, if that is worth a new connection.
    /// Before any rate is known nothing is: the split would only abort a
    /// response already on its way and fetch its bytes twice.
    func steal(_ flights: [Running]) -> Action? {
        let median = expectedRate(peers: flights.compactMap(\.rate))
        var best: (Running, Double)?
        for f in flights {
            guard let rate = f.rate ?? median else { continue }
            let eta = Double(f.stopAt - f.offset) / max(rate, 1)
            if best == nil || eta > best!.1 { best = (f, eta) }
        }
        // A range about to finish is not worth a new connection: the split
        // aborts the old response, wasting what is already in flight.
        guard let (f, eta) = best, eta >= minStealSeconds else { return nil }
        let rate = f.rate ?? median ?? 1
        guard
            let cut = SplitPolicy.splitPoint(
                offset: f.offset, end: f.stopAt, rate: rate,
                newRate: median ?? rate, minSplit: minSplitSize)
        else { return nil }
        return .split(blob: f.blob, transfer: f.transfer, at: cut)
    }

    /// Every progress tick: abandon silent connections while others
    /// receive, split the remainder of slow ones.
    func rebalance(_ flights: [Running], now: Double) -> [Action] {
        guard flights.count >= 2 else { return [] }
        var actions: [Action] = []
        var abandoned: [Running] = []
        // A connection that went silent while others still receive is cut
        // loose at once instead of holding its range (and the hash frontier)
        // until curl's absolute stall timeout.
        if flights.contains(where: { now - $0.lastByteAt < 1 }) {
            for f in flights where now - f.lastByteAt >= peerStallSeconds {
                abandoned.append(f)
                actions.append(
                    .abandon(
                        blob: f.blob, transfer: f.transfer,
                        why: "no data for \(Int(now - f.lastByteAt)) s while other connections receive"))
            }
        }
        for f in flights where !abandoned.contains(f) {
            guard let rate = f.rate, now - f.lastSplitAt >= Self.splitSpacing else { continue }
            let peers = flights.compactMap { $0.transfer == f.transfer ? nil : $0.rate }
            guard let median = expectedRate(peers: peers),
                SplitPolicy.isSlow(rate: rate, peerMedian: median, age: now - f.startedAt),
                let cut = SplitPolicy.splitPoint(
                    offset: f.offset, end: f.stopAt, rate: rate,
                    newRate: median, minSplit: minSplitSize)
            else { continue }
            actions.append(.split(blob: f.blob, transfer: f.transfer, at: cut))
        }
        return actions
    }
}
