import Foundation
import HaulTestSupport
import Testing

@testable import HaulKit

/// Each origin's connection count found by measuring, against the test
/// registry playing servers that punish too many connections.
@Suite(.serialized) struct AdaptiveConnectionsTests {
    /// A CDN that answers 503 to a client's connections beyond four (as
    /// CDNs answer a client that opens too many): Haul settles at four after
    /// the first refusals, where sixteen fixed connections keep being
    /// refused. Both end with the verified model.
    @Test(.timeLimit(.minutes(3))) func aServerThatRefusesConnectionsBeyondFourGetsFour() async throws {
        let root = TempDir("haul-adaptive")
        try FileManager.default.createDirectory(atPath: root.sub("blobs"), withIntermediateDirectories: true)
        _ = try TestModel.make(root: root.path, name: "library/wide:latest", layers: ["96M"])
        let registry = try TestRegistry(root: root.path, cdn: true, rate: "16M", maxConcurrent: 4)
        let name = "\(registry.host)/library/wide"

        let adaptive = try haul(["pull", name, "--insecure", "-q"], models: TempDir("haul-models").path)
        #expect(adaptive.status == 0, "\(adaptive.stderr)")
        let adaptiveRefusals = try await registry.counter("busy_refusals")

        let fixed = try haul(["pull", name, "--insecure", "-q", "--fixed"], models: TempDir("haul-models").path)
        #expect(fixed.status == 0, "\(fixed.stderr)")
        let fixedRefusals = try await registry.counter("busy_refusals") - adaptiveRefusals

        #expect(adaptiveRefusals <= 8, "refused \(adaptiveRefusals) times")
        #expect(fixedRefusals >= 3 * max(1, adaptiveRefusals), "adaptive \(adaptiveRefusals), fixed \(fixedRefusals)")
    }

    /// A source whose total rate collapses while one client holds more than
    /// four connections (as hf_xet's CDN did under sixteen): the step to
    /// eight is undone within two ticks and the extra connections are
    /// closed at once, so under 1/16 of the blob is received collapsed
    /// (about 1.7 MB here; 6.4 MB when the extra connections were left to
    /// end by themselves); eight fixed connections receive nearly the
    /// whole blob collapsed.
    @Test(.timeLimit(.minutes(3))) func aSourceWhoseRateCollapsesAboveFourIsLeftAtFour() async throws {
        let root = TempDir("haul-adaptive")
        try FileManager.default.createDirectory(atPath: root.sub("blobs"), withIntermediateDirectories: true)
        _ = try TestModel.make(root: root.path, name: "library/wide:latest", layers: ["64M"])
        let registry = try TestRegistry(root: root.path, cdn: true, rate: "8M", collapseAbove: 4, collapseRate: "4M")
        let name = "\(registry.host)/library/wide"
        let blob = 64 << 20

        let adaptive = try haul(["pull", name, "--insecure", "-q"], models: TempDir("haul-models").path)
        #expect(adaptive.status == 0, "\(adaptive.stderr)")
        let adaptiveCollapsed = try await registry.counter("collapsed_bytes")
        #expect(try await registry.counter("active_max") > 4, "the count was never probed above four")

        let fixed = try haul(
            ["pull", name, "--insecure", "-q", "--fixed", "--connections", "8"], models: TempDir("haul-models").path)
        #expect(fixed.status == 0, "\(fixed.stderr)")
        let fixedCollapsed = try await registry.counter("collapsed_bytes") - adaptiveCollapsed

        #expect(adaptiveCollapsed < blob / 16, "adaptive received \(adaptiveCollapsed) bytes collapsed")
        #expect(fixedCollapsed > blob * 3 / 4, "fixed received \(fixedCollapsed) bytes collapsed")
    }
}
