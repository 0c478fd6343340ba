import Foundation
import HaulTestSupport
import Testing

@testable import HaulKit

/// Pushes to a registry that takes uploads in Ollama's parts (the test
/// registry plays Ollama's protocol, `server/upload.go` being its client):
/// parts go side by side to the storage URLs the registry names, without
/// the registry's credentials and only to addresses the policy allows; a
/// killed push sends only the parts that were not done.
@Suite(.serialized) struct PartUploadTests {
    static func destination(tokenAuth: String? = nil) throws -> (TempDir, TestRegistry) {
        let root = TempDir("haul-push-destination")
        try FileManager.default.createDirectory(atPath: root.sub("blobs"), withIntermediateDirectories: true)
        return (root, try TestRegistry(root: root.path, cdn: true, tokenAuth: tokenAuth, redirectUploads: true))
    }

    static func partPuts(_ registry: TestRegistry) async throws -> [String: Int] {
        (try await registry.stats()["part_puts"] as? [String: Int]) ?? [:]
    }

    @Test(.timeLimit(.minutes(5))) func partsGoSideBySideToStorageWithoutCredentials() async throws {
        let models = TempDir("haul-models")
        let model = try TestModel.make(
            root: models.path, name: "registry.ollama.ai/library/big:latest", layers: ["250M"])
        let (root, destination) = try Self.destination(tokenAuth: "anonymous")
        defer { withExtendedLifetime(root) {} }
        // Every part is held at the storage until the test lets go: all
        // three in flight at once is possible only if they are sent side by side.
        try await destination.arm([["kind": "part-hold", "from_part": 0]])
        let logs = TempDir("haul-push-logs")
        let target = "\(destination.host)/team/big:latest"
        let push = try BackgroundProcess(
            ["push", "big", target, "--insecure", "--json"], models: models.path, logs: logs)
        let together = try await waitUntil(timeout: 60) { try await destination.counter("part_in_flight_max") >= 3 }
        try await destination.arm([])
        push.wait()
        #expect(together, "the parts of the 250 MB blob never were in flight together")
        #expect(push.stdout.contains("\"status\":\"success\""), "\(push.stderr)")

        let total = model.layers.reduce(0) { $0 + $1.size }
        #expect(try await destination.counter("part_bytes") == Int(total), "each part's bytes once, to the storage")
        #expect(try await destination.counter("upload_bytes") < 64 << 10, "no part's bytes went to the registry itself")
        #expect(try await destination.counter("cdn_authorization") == 0, "the registry's token went to the storage")
        let big = model.layers.max { $0.size < $1.size }!
        #expect(try await Self.partPuts(destination).keys.filter { $0.hasSuffix("-\(big.size - 1)") }.count == 1)
        #expect(
            try await Self.partPuts(destination).count == 3 + model.layers.count - 1,
            "three parts for the big blob, one per small one")

        let fresh = TempDir("haul-models")
        let back = try haul(["pull", target, "--insecure", "-q"], models: fresh.path)
        #expect(back.status == 0, "\(back.stderr)")
        #expect(try ModelStore(root: fresh.path).manifest(for: ModelName(parsing: target))?.raw == model.manifestBytes)
    }

    /// Killed with two of four parts at the storage and two on the way:
    /// the rerun sends the two again, to the URLs the registry gave for
    /// them, and not the two that were done.
    @Test(.timeLimit(.minutes(5))) func aKilledPushSendsOnlyThePartsNotDone() async throws {
        let models = TempDir("haul-models")
        let model = try TestModel.make(
            root: models.path, name: "registry.ollama.ai/library/big:latest", layers: ["350M"])
        let (root, destination) = try Self.destination()
        defer { withExtendedLifetime(root) {} }
        try await destination.arm([["kind": "part-hold", "from_part": 2]])
        let logs = TempDir("haul-push-logs")
        let target = "\(destination.host)/team/big:latest"
        let big = model.layers.max { $0.size < $1.size }!
        let doneRanges = ["0-99999999", "100000000-199999999"]
        let first = try BackgroundProcess(
            ["push", "big", target, "--insecure", "--json"], models: models.path, logs: logs)
        // Haul reports a part done after it has journaled it.
        let twoDone = try await waitUntil(timeout: 120) {
            let inFlight = try await destination.counter("part_in_flight_max")
            return inFlight >= 3 && first.stdout.contains("\"total\":\(big.size),\"completed\":200000000}")
        }
        first.send(SIGKILL)
        first.wait()
        try #require(twoDone, "two parts never reached the storage: \(first.stderr)")
        try await destination.arm([])
        let partials = try haul(["partials"], models: models.path)
        #expect(partials.stdout.contains("(push to \(destination.host)/team/big)"), "\(partials.stdout)")

        let second = try haul(["push", "big", target, "--insecure", "--json"], models: models.path)
        #expect(second.status == 0, "\(second.stderr)")
        let puts = try await Self.partPuts(destination)
        for range in doneRanges { #expect(puts[range] == 1, "part \(range) was sent again: \(puts)") }
        #expect(puts["300000000-\(big.size - 1)"] == 1 && puts["200000000-299999999"] == 1, "\(puts)")
        let firstReport =
            second.stdout.split(separator: "\n").first { $0.contains(big.digest.description) }.map(String.init) ?? ""
        #expect(
            firstReport.contains("\"completed\":200000000"), "the rerun starts where the parts were: \(firstReport)")
        let total = model.layers.reduce(0) { $0 + $1.size }
        let received = try await destination.counter("part_bytes")
        #expect(Double(received) <= 1.1 * Double(total), "the storage received \(received) bytes for \(total)")
        let fresh = TempDir("haul-models")
        let back = try haul(["pull", target, "--insecure", "-q"], models: fresh.path)
        #expect(back.status == 0, "\(back.stderr)")
        #expect(try ModelStore(root: fresh.path).manifest(for: ModelName(parsing: target))?.raw == model.manifestBytes)
        let records = (try? FileManager.default.contentsOfDirectory(atPath: models.sub(".haul/uploads"))) ?? []
        #expect(records.filter { $0.hasPrefix("upload-") }.isEmpty, "\(records)")
    }

    /// Storage that fails is retried; an expired part URL (403) costs a new
    /// session for that blob; a part sent to the cloud's metadata address
    /// is refused by a daemon before any connection, in one line.
    @Test func misbehavingStorageIsRetriedOrRefused() async throws {
        let models = TempDir("haul-models")
        let model = try TestModel.make(
            root: models.path, name: "registry.ollama.ai/library/small:latest", layers: ["3M", "200K"])
        let total = model.layers.reduce(0) { $0 + $1.size }
        for fault in [
            ["kind": "status", "status": 503, "target": "part", "times": 2],
            ["kind": "status", "status": 403, "target": "part", "min_size": 1 << 20]
        ] as [[String: Any]] {
            let (root, destination) = try Self.destination()
            defer { withExtendedLifetime(root) {} }
            try await destination.arm([fault])
            let target = "\(destination.host)/team/small:latest"
            let r = try haul(["push", "small", target, "--insecure"], models: models.path)
            #expect(r.status == 0, "\(fault): \(r.stderr)")
            let back = try haul(["pull", target, "--insecure", "-q"], models: TempDir("haul-models").path)
            #expect(back.status == 0, "\(fault): \(back.stderr)")
            #expect(try await destination.counter("part_bytes") <= Int(total) + (4 << 20), "\(fault)")
        }

        let (root, destination) = try Self.destination()
        defer { withExtendedLifetime(root) {} }
        try await destination.arm([["kind": "offsite-part", "target": "upload", "times": 100]])
        let daemon = try await Daemon(models: models.path, logs: TempDir("haul-logs"))
        let target = "\(destination.host)/team/small:latest"
        let copied = try await daemon.request(
            "POST", "/api/copy", body: #"{"source":"small","destination":"\#(target)"}"#)
        #expect(copied.status == 200, "\(copied.body)")
        let started = Date()
        let refused = try await daemon.request(
            "POST", "/api/push", body: #"{"model":"\#(target)","insecure":true,"stream":false}"#)
        let error = refused.json["error"] as? String ?? ""
        #expect(
            refused.status == 500 && error.contains("169.254.169.254") && error.contains("refused"), "\(refused.body)")
        #expect(Date().timeIntervalSince(started) < 10, "a refusal is not retried")
        #expect(try await destination.counter("part_bytes") == 0)
    }
}
