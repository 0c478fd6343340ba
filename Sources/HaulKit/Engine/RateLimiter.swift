internal import CShims

/// The one token bucket every range of a loop draws from (`--limit-rate`,
/// `HAUL_LIMIT_RATE`): all connections of all pulls together stay at the
/// limit. The C sinks take tokens as chunks arrive and pause their transfer
/// when none are left; the loop refills the bucket and resumes them, in
/// turn, so no connection starves. Loop thread only.
final class RateLimiter {
    let bytesPerSecond: Double
    let bucket: UnsafeMutablePointer<hl_bucket>
    /// At most this many tokens build up while little is taken: what a
    /// burst may carry beyond the rate (a quarter second's worth).
    private let capacity: Double
    private var refilledAt: Double
    /// Where the next resume round starts, so paused transfers take turns.
    private var turn = 0

    init(bytesPerSecond: Int64, now: Double) {
        self.bytesPerSecond = Double(bytesPerSecond)
        capacity = Double(bytesPerSecond) / 4
        bucket = .allocate(capacity: 1)
        bucket.initialize(to: hl_bucket(tokens: 0))
        refilledAt = now
    }

    deinit { bucket.deallocate() }

    /// Adds what the rate allows since the last refill.
    func refill(now: Double) {
        let tokens = bucket.pointee.tokens + bytesPerSecond * max(0, now - refilledAt)
        bucket.pointee.tokens = min(tokens, capacity)
        refilledAt = now
    }

    /// Seconds until a paused transfer can go on; 0 when it can now.
    var wait: Double { max(0, -bucket.pointee.tokens / bytesPerSecond) }

    /// Resumes paused transfers while tokens last, starting one further
    /// along each round.
    func resume(_ transfers: [Transfer]) {
        let paused = transfers.filter(\.state.isPaused)
        guard !paused.isEmpty else { return }
        turn = (turn + 1) % paused.count
        for t in paused[turn...] + paused[..<turn] where bucket.pointee.tokens > 0 {
            t.resume()
        }
    }

    /// The limiter `config` asks for, if any. With a limit, the receive
    /// buffer shrinks so that one chunk per connection stays small next to
    /// the rate (the debt those chunks can run up is a fraction of a
    /// second's worth), and there are no more connections than the rate
    /// feeds a chunk each about twice a second: a connection starved for
    /// longer would look stalled to the rebalancer and to curl, and be
    /// abandoned over and over, wasting what it had in flight.
    static func make(for config: inout EngineConfiguration, now: Double) -> RateLimiter? {
        guard let rate = config.maxBytesPerSecond, rate > 0 else { return nil }
        let minChunk = 16 << 10
        config.connections = min(config.connections, max(1, Int(rate) / (2 * minChunk)))
        let chunk = Int(rate) / (2 * config.connections)
        config.receiveBufferSize = min(config.receiveBufferSize, max(minChunk, chunk))
        return RateLimiter(bytesPerSecond: rate, now: now)
    }
}
