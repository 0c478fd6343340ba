/// The connection budget of every origin the loop fetches ranges from (the
/// registry, each mirror, each CDN host), one `ConnectionController` each,
/// shared by every blob of every pull in the process: the daemon's eight
/// pulls from one CDN share that CDN's count. A value the loop feeds with
/// bytes, refusals and resets, and asks before it opens a range.
struct OriginBudgets: Sendable {
    let settings: ConnectionController.Settings
    private var controllers: [String: ConnectionController] = [:]
    /// Bytes delivered since the last tick, by origin.
    private var delivered: [String: Int64] = [:]
    /// When each origin last had a range open or delivered a byte.
    private var lastUsed: [String: Double] = [:]
    /// An origin unused this long is forgotten (its next pull measures
    /// again): a daemon that pulls for months from ever new CDN hosts keeps
    /// only the recent ones.
    static let forgetAfter = 600.0

    init(settings: ConnectionController.Settings) { self.settings = settings }

    /// `scheme://host:port` of `url`: what one budget covers.
    static func origin(of url: String) -> String {
        guard let parts = URLParts(url) else { return url }
        return "\(parts.scheme)://\(parts.host):\(parts.port)"
    }

    /// Connections `origin` may have now.
    func limit(for origin: String) -> Int {
        controllers[origin]?.limit ?? ConnectionController(settings: settings).limit
    }

    /// The current limits, by origin (for metrics and the debug trace);
    /// origins unused for `forgetAfter` seconds are gone.
    var limits: [String: Int] { controllers.mapValues(\.limit) }

    mutating func delivered(_ bytes: Int64, by origin: String) {
        guard bytes > 0 else { return }
        delivered[origin, default: 0] += bytes
    }

    /// Every progress tick, with the ranges open to each origin.
    mutating func tick(now: Double, active: [String: Int]) {
        for (origin, since) in lastUsed
        where now - since > Self.forgetAfter && active[origin] == nil && delivered[origin] == nil {
            controllers.removeValue(forKey: origin)
            lastUsed.removeValue(forKey: origin)
        }
        for origin in Set(active.keys).union(delivered.keys) {
            lastUsed[origin] = now
            var controller = controllers[origin] ?? ConnectionController(settings: settings)
            let before = controller.limit
            controller.observe(now: now, bytes: delivered[origin] ?? 0, active: active[origin] ?? 0)
            if controller.limit != before { DebugTrace.log("\(origin): \(before) -> \(controller.limit) connections") }
            controllers[origin] = controller
        }
        delivered.removeAll(keepingCapacity: true)
    }

    /// `origin` answered 429 or 503 while `receiving` of its ranges still
    /// delivered bytes.
    mutating func throttled(_ origin: String, now: Double, receiving: Int, retryAfter: Double?) {
        lastUsed[origin] = now
        var controller = controllers[origin] ?? ConnectionController(settings: settings)
        controller.throttled(now: now, receiving: receiving, retryAfter: retryAfter)
        DebugTrace.log("\(origin) refused a range: \(controller.limit) connections")
        controllers[origin] = controller
    }

    /// A connection to `origin` was reset or cut.
    mutating func reset(_ origin: String, now: Double) {
        lastUsed[origin] = now
        var controller = controllers[origin] ?? ConnectionController(settings: settings)
        controller.reset(now: now)
        controllers[origin] = controller
    }
}
