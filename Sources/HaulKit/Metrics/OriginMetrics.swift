import CoreMetrics

/// The loop's series per origin (a registry, a mirror, a CDN host), kept
/// on the loop thread: bytes received (`haul_downloaded_bytes_total`),
/// ranges open now (`haul_origin_connections`) and the count its
/// `ConnectionController` allows (`haul_origin_connection_limit`), each
/// labelled `host` (`host:port`, bounded by `HostLabels`).
final class OriginMetrics {
    private struct Series {
        let bytes: Counter
        let open: Gauge
        let limit: Gauge
    }

    private let metrics: HaulMetrics
    /// By label, so that at most `HostLabels.limit` + 1 are kept.
    private var series: [String: Series] = [:]
    /// Each origin's label; emptied when large (origins come and go).
    private var labels: [String: String] = [:]

    init(_ metrics: HaulMetrics) { self.metrics = metrics }

    func delivered(_ bytes: Int64, by origin: String) {
        guard bytes > 0 else { return }
        self.series(for: origin).bytes.increment(by: bytes)
    }

    /// Every progress tick: the ranges open and the limit of each origin
    /// seen; an origin with nothing open reads 0 connections.
    func update(active: [String: Int], limits: [String: Int]) {
        var open: [String: Int] = [:]
        var limit: [String: Int] = [:]
        for (origin, n) in active { open[label(of: origin), default: 0] += n }
        for (origin, n) in limits { limit[label(of: origin)] = n }
        for label in open.keys where series[label] == nil { _ = series(label: label) }
        for (label, s) in series {
            s.open.record(open[label] ?? 0)
            if let n = limit[label] { s.limit.record(n) }
        }
    }

    private func label(of origin: String) -> String {
        if let label = labels[origin] { return label }
        if labels.count >= 4 * HostLabels.defaultLimit { labels.removeAll() }
        let label = metrics.hosts.label(for: URLParts(origin).map { "\($0.host):\($0.port)" } ?? origin)
        labels[origin] = label
        return label
    }

    private func series(for origin: String) -> Series { series(label: label(of: origin)) }

    private func series(label host: String) -> Series {
        if let s = series[host] { return s }
        let dimensions = [("host", host)]
        let s = Series(
            bytes: Counter(label: "haul_downloaded_bytes_total", dimensions: dimensions, factory: metrics.factory),
            open: Gauge(label: "haul_origin_connections", dimensions: dimensions, factory: metrics.factory),
            limit: Gauge(label: "haul_origin_connection_limit", dimensions: dimensions, factory: metrics.factory))
        series[host] = s
        return s
    }
}
