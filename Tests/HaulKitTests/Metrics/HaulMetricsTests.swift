import CoreMetrics
import Testing

@testable import HaulKit

/// The bounds that keep `/metrics` small whatever clients and servers do.
@Suite struct HaulMetricsTests {
    @Test func hostLabelsStopGrowingAtTheirLimit() {
        // A daemon sent to ever new registries (or a registry redirecting
        // to ever new CDN hosts): the first 64 keep their names.
        let labels = HostLabels()
        let given = (0..<1000).map { labels.label(for: "cdn\($0).example:443") }
        #expect(Set(given).count == HostLabels.defaultLimit + 1)
        #expect(given[63] == "cdn63.example:443" && given[64] == HostLabels.other && given[999] == HostLabels.other)
        #expect(labels.label(for: "cdn5.example:443") == "cdn5.example:443", "a host seen keeps its name")
    }

    @Test func failureReasonsAreAFewClassesNeverAServersText() {
        let errors: [any Error] = [
            HaulError.network(url: "https://x", message: "a 1 MiB message from a hostile server"),
            HaulError.digestMismatch(want: Digest(hashing: [1]), got: Digest(hashing: [2])),
            HaulError.manifestNotFound, HaulError.cancelled, CancellationError(),
            HaulError.insufficientSpace(path: "/", needed: 2, available: 1), HaulError.unauthorized("no")
        ]
        #expect(
            errors.map(HaulMetrics.reason) == [
                "network", "digest_mismatch", "not_found", "cancelled", "cancelled",
                "no_space", "unauthorized"
            ])
    }
}
