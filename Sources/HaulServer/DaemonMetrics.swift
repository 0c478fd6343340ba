import CoreMetrics
import Foundation
import HaulKit
import Prometheus
import Synchronization

/// The daemon's metrics in Prometheus' text format (`GET /metrics`): the
/// `Haul`'s own (`HaulMetrics`: pulls, bytes by source host, connections
/// by origin, mismatches, mirror skips) and the node's (bytes its `/v2/`
/// served, pull-through hits and misses, request counts and latencies by
/// route, the store's size). One registry per daemon, nothing global: an
/// embedder's own swift-metrics bootstrap is left alone, and two daemons in
/// one process (tests) do not share counters.
public final class DaemonMetrics: Sendable {
    /// The registry `/metrics` renders.
    public let registry: PrometheusCollectorRegistry
    /// A swift-metrics factory over `registry`: give it to the `Haul`
    /// (`HaulMetrics(factory:)`) so its metrics are rendered too.
    public let factory: PrometheusMetricsFactory
    let servedBytes: CoreMetrics.Counter
    private let storeBytes: CoreMetrics.Gauge
    private let storeBlobs: CoreMetrics.Gauge
    /// When the store was last measured: at most every `storeInterval`
    /// seconds, however often it is scraped (a walk of the blobs directory).
    private let storeMeasured = Mutex<ContinuousClock.Instant?>(nil)
    static let storeInterval: Duration = .seconds(1)

    /// Metrics rendered from `registry` (a new one by default); request
    /// latencies are bucketed from 1 ms to 2 minutes.
    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        var factory = PrometheusMetricsFactory(registry: registry)
        // Request latencies: 1 ms to a minute (a pull's NDJSON stream is
        // one long request).
        factory.defaultDurationHistogramBuckets = [
            .milliseconds(1), .milliseconds(5), .milliseconds(25), .milliseconds(100),
            .milliseconds(250), .seconds(1), .seconds(5), .seconds(30), .seconds(120)
        ]
        self.factory = factory
        servedBytes = CoreMetrics.Counter(label: "haul_registry_served_bytes_total", factory: factory)
        storeBytes = CoreMetrics.Gauge(label: "haul_store_bytes", factory: factory)
        storeBlobs = CoreMetrics.Gauge(label: "haul_store_blobs", factory: factory)
    }

    /// A `/v2/` manifest request for a registry the node pulls through:
    /// `hit` (stored), `miss` (pulled now) or `error` (the pull failed).
    func pullThrough(_ result: String) {
        CoreMetrics.Counter(
            label: "haul_pull_through_requests_total", dimensions: [("result", result)], factory: factory
        ).increment()
    }

    /// One request that reached a route: `route` is the route's pattern
    /// (never the path itself), `method` one of the standard methods.
    func request(route: String, method: String, status: Int, seconds: Double) {
        let dimensions = [("route", route), ("method", method), ("status", "\(status)")]
        CoreMetrics.Counter(label: "haul_http_requests_total", dimensions: dimensions, factory: factory).increment()
        CoreMetrics.Timer(
            label: "haul_http_request_duration_seconds", dimensions: [("route", route), ("method", method)],
            factory: factory
        ).recordNanoseconds(Int64(seconds * 1e9))
    }

    /// The text `/metrics` answers, the store's size measured first when
    /// the last measure is older than `storeInterval`.
    func render(store: ModelStore) -> [UInt8] {
        let due = storeMeasured.withLock { last in
            guard last.map({ $0.duration(to: .now) >= Self.storeInterval }) ?? true else { return false }
            last = .now
            return true
        }
        if due {
            let (bytes, blobs) = Self.measure(store)
            storeBytes.record(bytes)
            storeBlobs.record(blobs)
        }
        return registry.emitToBuffer()
    }

    /// Bytes and count of the store's blobs (`blobs/sha256-*`, by their
    /// sizes; partial downloads are not counted).
    static func measure(_ store: ModelStore) -> (Int64, Int64) {
        let dir = store.root + "/blobs"
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else { return (0, 0) }
        var bytes: Int64 = 0
        var blobs: Int64 = 0
        for name in names where name.hasPrefix("sha256-") {
            var st = stat()
            guard lstat(dir + "/" + name, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { continue }
            bytes += Int64(st.st_size)
            blobs += 1
        }
        return (bytes, blobs)
    }
}
