import Testing

@testable import HaulKit

/// The per-origin connection count against servers played as rate curves
/// on a moving clock: no sockets, seconds of simulated time in microseconds.
@Suite struct ConnectionControllerTests {
    /// Drives `controller` for `seconds` against a server whose aggregate
    /// rate (bytes/s) with `n` connections is `rate(n)`, as the loop would:
    /// every 100 ms, the bytes of that tick, all allowed connections busy.
    /// Returns the limit after each simulated second.
    static func run(
        _ controller: inout ConnectionController, from start: Double = 0, seconds: Double,
        rate: (Int) -> Double
    ) -> [Int] {
        var limits: [Int] = []
        // Ticks counted, not summed, so that a run continued from `start`
        // never repeats an instant.
        for tick in 1...Int((seconds * 10).rounded()) {
            let now = start + Double(tick) / 10
            let n = controller.limit
            controller.observe(now: now, bytes: Int64(rate(n) * 0.1), active: n)
            if tick % 10 == 0 { limits.append(controller.limit) }
        }
        return limits
    }

    static func settings(ceiling: Int = 16) -> ConnectionController.Settings { .init(ceiling: ceiling) }

    @Test func aServerThatCollapsesAboveFourIsHeldAtFour() {
        // 25 MB/s per connection up to 4; above, the whole origin drops to 10 MB/s.
        var c = ConnectionController(settings: Self.settings())
        let limits = Self.run(&c, seconds: 120) { n in n <= 4 ? Double(n) * 25e6 : 10e6 }
        #expect(c.limit == 4, "\(limits)")
        // Converged within 3 s; later probes of a fifth connection cost a
        // second each, ever more rarely.
        let after = limits.dropFirst(3)
        #expect(after.filter { $0 != 4 }.count <= 3, "\(limits)")
    }

    @Test func aStepIntoACollapseIsUndoneWithinTwoTicks() {
        // At 4 from the start, the first step (to 8) collapses the server to
        // 16 MB/s: every tick there costs the whole origin its rate, so it
        // is undone on the second tick, not at the end of the window.
        var c = ConnectionController(settings: Self.settings())
        var collapsedTicks = 0
        for tick in 1...30 {
            let n = c.limit
            if n > 4 { collapsedTicks += 1 }
            c.observe(now: Double(tick) / 10, bytes: Int64((n <= 4 ? Double(n) * 50e6 : 16e6) * 0.1), active: n)
        }
        #expect(c.limit == 4)
        #expect((1...2).contains(collapsedTicks), "\(collapsedTicks) ticks above the knee")
        // An honest server's step is judged on the whole window: a dip in
        // its first ticks (connections still opening) is not a verdict.
        var d = ConnectionController(settings: Self.settings())
        var tick = 0
        while d.limit == 4, tick < 20 {
            tick += 1
            d.observe(now: Double(tick) / 10, bytes: Int64(Double(d.limit) * 50e6 * 0.1), active: d.limit)
        }
        #expect(d.limit == 8)
        for _ in 0..<3 {
            tick += 1
            d.observe(now: Double(tick) / 10, bytes: Int64(150e6 * 0.1), active: 8)
        }
        #expect(d.limit == 8, "0.3 s at 0.75x the rate before the step is not a collapse")
    }

    @Test func aServerThatScalesGetsMoreConnectionsUpToTheKnee() {
        // 50 MB/s per connection up to 12, flat beyond.
        var c = ConnectionController(settings: Self.settings())
        let limits = Self.run(&c, seconds: 20) { n in Double(min(n, 12)) * 50e6 }
        #expect((12...16).contains(c.limit), "\(limits)")
    }

    @Test func aFlatServerStaysModest() {
        // Loopback bound by one core: as fast with 2 connections as with 16.
        var c = ConnectionController(settings: Self.settings())
        let limits = Self.run(&c, seconds: 10) { n in n >= 2 ? 1e9 : 6e8 }
        #expect(c.limit == 4, "the first increase bought nothing: \(limits)")
    }

    @Test func theCeilingIsNeverPassedAndFixedIsFixed() {
        var c = ConnectionController(settings: Self.settings(ceiling: 6))
        let limits = Self.run(&c, seconds: 20) { n in Double(n) * 50e6 }
        #expect(limits.allSatisfy { $0 <= 6 } && c.limit == 6, "\(limits)")

        var settings = Self.settings()
        settings.fixed = true
        var fixed = ConnectionController(settings: settings)
        #expect(fixed.limit == 16)
        fixed.throttled(now: 1, receiving: 2, retryAfter: 5)
        fixed.reset(now: 1)
        _ = Self.run(&fixed, seconds: 5) { _ in 1e6 }
        #expect(fixed.limit == 16)
    }

    @Test func refusalsSetTheCountToWhatStillWorksAndWaitForRetryAfter() {
        var c = ConnectionController(settings: Self.settings())
        _ = Self.run(&c, seconds: 2) { n in Double(n) * 25e6 }
        #expect(c.limit > 4)
        // A server that refuses connections beyond four: four still receive.
        c.throttled(now: 2.0, receiving: 4, retryAfter: 30)
        #expect(c.limit == 4)
        // The burst's other refusals, the four still receiving: still four.
        for _ in 0..<3 { c.throttled(now: 2.0, receiving: 4, retryAfter: 30) }
        #expect(c.limit == 4)
        // Past the usual probe time, but not past Retry-After.
        let quiet = Self.run(&c, from: 2.0, seconds: 25) { n in Double(n) * 25e6 }
        #expect(quiet.allSatisfy { $0 == 4 }, "nothing grows before Retry-After: \(quiet)")
        // Refused while all sixteen still receive (a limit on requests, not
        // connections): a quarter off all the same. None receiving: half.
        var d = ConnectionController(settings: Self.settings())
        _ = Self.run(&d, seconds: 3) { n in Double(n) * 25e6 }
        #expect(d.limit == 16)
        d.throttled(now: 3.0, receiving: 16, retryAfter: nil)
        #expect(d.limit == 12)
        d.throttled(now: 10, receiving: 0, retryAfter: nil)
        #expect(d.limit == 6)
    }

    @Test func aRateThatFallsUnderTheCountBacksOffAndNeverBelowOne() {
        var c = ConnectionController(settings: Self.settings())
        _ = Self.run(&c, seconds: 10) { n in Double(min(n, 8)) * 50e6 }
        let knee = c.limit
        #expect(knee >= 8)
        // Thirty seconds in, the server collapses for every count (hf_xet's
        // behaviour under many connections): the controller halves, twice
        // if need be, and keeps at least one.
        let later = Self.run(&c, from: 10, seconds: 10) { _ in 1e6 }
        #expect(c.limit < knee && c.limit >= 1, "\(later)")
        for i in 0..<20 { c.reset(now: 30 + Double(i)) }
        #expect(c.limit == 1)
    }

    @Test func heldItProbesHigherAndKeepsWhatHelps() {
        var c = ConnectionController(settings: Self.settings())
        // Flat beyond 4 at first: the knee is 4.
        _ = Self.run(&c, seconds: 5) { n in Double(min(n, 4)) * 50e6 }
        #expect(c.limit == 4)
        // The link gets better: the probe after `reprobe` seconds finds it.
        let limits = Self.run(&c, from: 5, seconds: 40) { n in Double(min(n, 10)) * 50e6 }
        #expect(c.limit >= 8, "\(limits)")
    }

    @Test func aCountThatBuysNothingComesDownButNotBelowWhatTheRateNeeds() {
        // As fast with two as with more, slower with one.
        var c = ConnectionController(settings: Self.settings())
        let limits = Self.run(&c, seconds: 300) { n in n >= 2 ? 1e9 : 6e8 }
        #expect(c.limit == 2, "\(limits)")
        #expect(limits.allSatisfy { $0 >= 1 })
    }

    @Test func aWindowWithIdleConnectionsSaysNothing() {
        var c = ConnectionController(settings: Self.settings())
        var now = 0.0
        for _ in 0..<100 {
            now += 0.1
            // Only two of the four allowed are busy: demand, not the server, limits the rate.
            c.observe(now: now, bytes: 5_000_000, active: 2)
        }
        #expect(c.limit == 4)
    }

    @Test func originsAreKeptApartAndForgottenWhenUnused() {
        var budgets = OriginBudgets(settings: Self.settings())
        #expect(OriginBudgets.origin(of: "https://cdn.example/blobs/x?sig=1") == "https://cdn.example:443")
        #expect(OriginBudgets.origin(of: "http://127.0.0.1:8080/v2/a") == "http://127.0.0.1:8080")
        let cdn = "https://cdn.example:443"
        let mirror = "https://mirror.example:443"
        budgets.throttled(cdn, now: 1, receiving: 2, retryAfter: nil)
        #expect(budgets.limit(for: cdn) == 2)
        #expect(budgets.limit(for: mirror) == 4, "another origin has its own count")
        budgets.tick(now: 2, active: [mirror: 1])
        #expect(budgets.limits.keys.sorted() == [cdn, mirror])
        // Ten minutes later the CDN has had nothing open: forgotten.
        budgets.tick(now: 2 + OriginBudgets.forgetAfter + 1, active: [mirror: 1])
        #expect(budgets.limits.keys.sorted() == [mirror])
        #expect(budgets.limit(for: cdn) == 4, "measured again from the start")
    }
}
