/// How many range connections one origin (a registry, a mirror, a CDN
/// host) gets, found by measuring instead of fixed: real servers punish too
/// many connections from one client (a CDN's 429/503, a throttled share, a
/// rate that collapses above a few connections), and no fixed number is
/// right for every server and link.
///
/// A value that takes events and says how many connections the origin may
/// have (`limit`); the loop feeds it the origin's bytes every tick, and its
/// refusals and resets, and opens no more than `limit` ranges there.
///
/// - It starts modestly and adds connections while the origin's aggregate
///   rate grows by a meaningful step (`growth`) per window in which the
///   allowed connections were busy: doubling while the rate grows by a
///   third or more, then by half. The first window that does not grow is
///   the knee: the last increase is undone and the count held.
/// - Held, it backs off (halves) when the rate falls well below the knee's
///   for two windows in a row (a server that collapses under the count),
///   and after `reprobe` seconds probes one connection more or one fewer,
///   in turn: one more is kept only if the rate grows, one fewer if the
///   rate stays within `growth / 2` of the best seen (fewer connections
///   cost less CPU and less of the server's patience, and a count that
///   started above a server's limit comes down). Each probe that is not
///   kept doubles the wait for the next.
/// - A 429 or 503 sets it to the connections still receiving (or half, if
///   fewer remain), and nothing grows before `Retry-After` has passed; a
///   reset takes a quarter off.
/// - Never below 1, never above the ceiling (`--connections`). The stall
///   detector still replaces a dead connection: the limit counts
///   connections, it does not keep a dead one.
struct ConnectionController: Sendable, Equatable {
    struct Settings: Sendable, Equatable {
        /// The user's `--connections`: never more.
        var ceiling: Int
        /// Where a new origin starts.
        var initial = 4
        /// Seconds of transfer that make one measurement.
        var window = 0.5
        /// The rate must grow by this fraction for more connections to count.
        var growth = 0.10
        /// A rate below this fraction of the knee's, twice, means back off.
        var collapse = 0.6
        /// A step up whose rate falls below this fraction of the rate before
        /// it is undone after `earlyAfter` seconds, without waiting for the
        /// whole window: more connections never lower an honest server's
        /// total, and a server that collapses under them costs every
        /// connection its rate while the window runs.
        var earlyDrop = 0.7
        var earlyAfter = 0.2
        /// Seconds held before trying one connection more.
        var reprobe = 15.0
        /// `--fixed`: always the ceiling (today's behaviour).
        var fixed = false
    }

    enum Phase: Sendable, Equatable {
        /// Growing; `rate` was measured at `previousLimit`.
        case ramp(previousLimit: Int, rate: Double?)
        /// At the knee, whose rate was `knee`; `low` windows in a row below it.
        case hold(knee: Double?, since: Double, low: Int)
        /// One connection more (or fewer) than the knee's `limit`, to see.
        case probe(knee: Double?, limit: Int)
    }

    let settings: Settings
    private(set) var limit: Int
    private(set) var phase: Phase
    /// No growth before this time (a `Retry-After`, a fresh back-off).
    private(set) var quietUntil = 0.0
    /// Seconds held before the next probe.
    private var reprobeAfter: Double
    /// The next probe tries one connection more (else one fewer).
    private var probeUp = true
    /// The window being measured: its start, bytes, and whether every
    /// allowed connection stayed busy through it.
    private var windowStart: Double?
    private var windowBytes: Int64 = 0
    private var ticks = 0
    private var busyTicks = 0

    init(settings: Settings) {
        self.settings = settings
        reprobeAfter = settings.reprobe
        let ceiling = max(1, settings.ceiling)
        limit = settings.fixed ? ceiling : min(ceiling, max(1, settings.initial))
        phase = limit == ceiling ? .hold(knee: nil, since: 0, low: 0) : .ramp(previousLimit: limit, rate: nil)
    }

    /// Bytes the origin delivered since the last call, with `active`
    /// connections open to it. A window only counts when the origin had
    /// every connection it was allowed throughout: a rate limited by
    /// demand (the last ranges of a pull) says nothing about the server.
    mutating func observe(now: Double, bytes: Int64, active: Int) {
        guard !settings.fixed else { return }
        guard let start = windowStart else {
            windowStart = now
            (windowBytes, ticks, busyTicks) = (0, 0, 0)
            return
        }
        windowBytes += bytes
        ticks += 1
        if active >= limit { busyTicks += 1 }
        let rate = Double(windowBytes) / max(now - start, 1e-3)
        guard now - start >= settings.window || (now - start >= settings.earlyAfter && stepLost(rate)) else { return }
        // Ranges end and the next start between two ticks: most of the
        // window at the limit counts as all of it.
        let counted = busyTicks * 10 >= ticks * 7
        windowStart = now
        (windowBytes, ticks, busyTicks) = (0, 0, 0)
        if counted { measured(rate, now: now) }
    }

    /// The step up being measured already gives far less than before it.
    private func stepLost(_ rate: Double) -> Bool {
        switch phase {
        case .ramp(_, let previous?): return rate < previous * settings.earlyDrop
        case .probe(let knee?, let held) where limit > held: return rate < knee * settings.earlyDrop
        default: return false
        }
    }

    private mutating func measured(_ rate: Double, now: Double) {
        switch phase {
        case .ramp(let previousLimit, let previous):
            guard now >= quietUntil else { return }
            if let previous, rate < previous * (1 + settings.growth) {
                // The knee: the last increase bought nothing; undo it.
                limit = previousLimit
                phase = .hold(knee: max(rate, previous), since: now, low: 0)
            } else if limit >= settings.ceiling {
                phase = .hold(knee: rate, since: now, low: 0)
            } else {
                let fast = previous.map { rate >= $0 * 4 / 3 } ?? true
                let next = min(settings.ceiling, fast ? limit * 2 : limit + max(1, limit / 2))
                phase = .ramp(previousLimit: limit, rate: rate)
                limit = next
            }
        case .hold(let knee, let since, let low):
            guard let knee else {
                phase = .hold(knee: rate, since: since, low: 0)
                return
            }
            if rate < knee * settings.collapse {
                if low + 1 >= 2 {
                    // The server gives less than it did at this count: fewer.
                    limit = max(1, limit / 2)
                    phase = .hold(knee: nil, since: now, low: 0)
                    quietUntil = now + 2 * settings.window
                } else {
                    phase = .hold(knee: knee, since: since, low: low + 1)
                }
            } else if now - since >= reprobeAfter && now >= quietUntil && (limit < settings.ceiling || limit > 1) {
                let up = (probeUp && limit < settings.ceiling) || limit == 1
                probeUp.toggle()
                phase = .probe(knee: max(knee, rate), limit: limit)
                limit += up ? 1 : -1
            } else {
                phase = .hold(knee: max(knee, rate), since: since, low: 0)
            }
        case .probe(let knee, let held) where limit < held:
            if let knee, rate >= knee * (1 - settings.growth / 2) {
                // As fast with one fewer: keep it.
                reprobeAfter = settings.reprobe
                phase = .hold(knee: knee, since: now, low: 0)
            } else {
                limit = held
                reprobeAfter = min(reprobeAfter * 2, 16 * settings.reprobe)
                phase = .hold(knee: knee ?? rate, since: now, low: 0)
            }
        case .probe(let knee, let held):
            if let knee, rate >= knee * (1 + settings.growth / 2) {
                // It helped: grow again from here.
                reprobeAfter = settings.reprobe
                phase = .ramp(previousLimit: limit, rate: rate)
                if limit < settings.ceiling {
                    limit = min(settings.ceiling, limit + 1)
                } else {
                    phase = .hold(knee: rate, since: now, low: 0)
                }
            } else {
                limit = held
                reprobeAfter = min(reprobeAfter * 2, 16 * settings.reprobe)
                phase = .hold(knee: knee ?? rate, since: now, low: 0)
            }
        }
    }

    /// The origin answered 429 or 503 (too many connections or requests)
    /// while `receiving` of its connections still delivered bytes.
    mutating func throttled(now: Double, receiving: Int, retryAfter: Double?) {
        guard !settings.fixed else { return }
        // The connections that still receive are what the server takes (a
        // server that refuses connections beyond some count), but never
        // less than a quarter off: a 429 for requests, not connections,
        // still backs off multiplicatively.
        // The other refusals of the same burst (the count was over the
        // server's limit by several) are the same event: within the quiet
        // time they only follow the connections still receiving down.
        if now < quietUntil {
            limit = max(1, min(limit, receiving > 0 ? receiving : limit))
        } else {
            let target = receiving > 0 ? min(receiving, limit * 3 / 4) : limit / 2
            limit = max(1, min(limit - 1, target))
        }
        phase = .hold(knee: nil, since: now, low: 0)
        quietUntil = max(quietUntil, now + max(retryAfter ?? 0, 2 * settings.window))
        windowStart = nil
    }

    /// A connection to the origin was reset.
    mutating func reset(now: Double) {
        guard !settings.fixed, limit > 1 else { return }
        limit = max(1, limit - max(1, limit / 4))
        phase = .hold(knee: nil, since: now, low: 0)
        quietUntil = max(quietUntil, now + 2 * settings.window)
        windowStart = nil
    }
}
