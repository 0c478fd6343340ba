import CoreMetrics

/// What a `Haul` reports to swift-metrics: pulls and their outcomes, bytes
/// by source host, each origin's connections, digest mismatches, mirror
/// skips. Names follow Prometheus' conventions (`haul_` prefix, `_total`
/// for counters, base units), so a Prometheus backend exports them as they
/// are; the README lists each with a query.
///
/// By default the handles come from `MetricsSystem.factory`: an embedder
/// that bootstraps swift-metrics gets Haul's metrics with its own, and one
/// that does not pays for no-op handles. `haul serve` passes a factory over
/// its own Prometheus registry instead, so nothing global is set.
public struct HaulMetrics: Sendable {
    let factory: any MetricsFactory
    /// Bounded `host` label values, shared by every metric with one.
    let hosts: HostLabels

    /// Pulls begun (`haul_pulls_started_total`).
    let pullsStarted: Counter
    /// Pulls running now (`haul_pulls_active`).
    let pullsActive: Meter
    /// Blobs that failed verification in the end: a pull that gave up
    /// on a blob whose bytes never matched, a stored blob `BlobVerifier`
    /// quarantined (`haul_blob_verification_failures_total`).
    let verificationFailures: Counter

    /// Handles from `factory` (by default the process's `MetricsSystem`).
    public init(factory: any MetricsFactory = MetricsSystem.factory) {
        self.factory = factory
        hosts = HostLabels()
        pullsStarted = Counter(label: "haul_pulls_started_total", factory: factory)
        pullsActive = Meter(label: "haul_pulls_active", factory: factory)
        verificationFailures = Counter(label: "haul_blob_verification_failures_total", factory: factory)
    }

    /// A pull ended: `haul_pulls_total{outcome, reason}`, where `outcome`
    /// is `success` or `failure` and `reason` one of `HaulError`'s few
    /// classes (`metricReason`), `none` on success.
    func pullEnded(_ error: (any Error)?) {
        let reason = error.map(Self.reason) ?? "none"
        Counter(
            label: "haul_pulls_total",
            dimensions: [("outcome", error == nil ? "success" : "failure"), ("reason", reason)],
            factory: factory
        ).increment()
        if case .digestMismatch? = error as? HaulError { verificationFailures.increment() }
    }

    /// Bytes from `host` hashed to another digest than the one asked for
    /// (`haul_digest_mismatches_total{host}`), whether or not another
    /// attempt or source then delivered the right ones.
    func digestMismatch(from host: String) {
        Counter(label: "haul_digest_mismatches_total", dimensions: [("host", hosts.label(for: host))], factory: factory)
            .increment()
    }

    /// A mirror failed and the next source was tried
    /// (`haul_mirror_skips_total{host}`).
    func mirrorSkipped(_ host: String) {
        Counter(label: "haul_mirror_skips_total", dimensions: [("host", hosts.label(for: host))], factory: factory)
            .increment()
    }

    /// A bounded label for why a pull failed: a handful of classes, never
    /// text from a server (which would make one series per message).
    static func reason(_ error: any Error) -> String {
        if error is CancellationError { return "cancelled" }
        guard let error = error as? HaulError else { return "other" }
        switch error {
        case .cancelled: return "cancelled"
        case .invalidModelName, .invalidDigest, .unknownRunner, .cloudModel, .invalidRate, .clientVersionRefused:
            return "invalid_request"
        case .modelNotFound, .manifestNotFound, .blobNotFound, .noCompatibleManifest: return "not_found"
        case .unauthorized, .authentication, .blobUnauthorized, .pushUnauthorized: return "unauthorized"
        case .manifestUnreachable, .network, .manifestStatus, .retriesExhausted: return "network"
        case .digestMismatch: return "digest_mismatch"
        case .manifestInvalid, .storedManifest: return "invalid_manifest"
        case .insufficientSpace: return "no_space"
        case .io, .archive: return "io"
        case .hostsConfig: return "config"
        case .push, .pushManifest: return "push"
        }
    }
}
