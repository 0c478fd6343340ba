import Foundation
import HaulTestSupport
import Testing

@testable import HaulKit

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A manifest list naming one 4 MiB child 256 times, under five names (as
/// `/api/copy` makes them): every listing read, hashed and held the child
/// once per entry per name, about 1 GiB per `/api/tags`, and `haul list`
/// took 24 s and 5.3 GB. Now each distinct child is read once, parsed
/// manifests are kept by file identity, and the node's `/v2/` reads only
/// the repository a request names. Timings and memory are asserted
/// loosely (ten times what they take); the bench is where speed is claimed.
@Suite(.serialized) struct HostileListTests {
    static let model = "application/vnd.ollama.image.model"

    /// A store with `tiny` and, when `hostile`, five names of the list.
    static func store(hostile: Bool) throws -> TempDir {
        let dir = TempDir("haul-hostile-list")
        let ollama = try OllamaStore(dir.path)
        let tiny = try ollama.image([(model, "tiny weights")])
        try ollama.linkV2("example.com/team/tiny:latest", tiny.bytes)
        guard hostile else { return dir }
        // A valid manifest padded with JSON whitespace to just under 4 MiB.
        var child = try ollama.image([(model, "hostile weights")]).bytes
        child.insert(contentsOf: [UInt8](repeating: 0x20, count: (4 << 20) - child.count - 64), at: child.count - 1)
        let list = try ollama.list(
            Array(repeating: .reference(manifest: child, runner: "llamacpp", stored: true), count: 256))
        for i in 1...5 { try ollama.linkV2("example.com/hostile/list:v\(i)", list) }
        // Files changed in the last second or two are not kept by the
        // manifest cache (coarse timestamps); a store is older than that.
        Thread.sleep(forTimeInterval: 2.1)
        return dir
    }

    static func timed<T>(_ body: () async throws -> T) async rethrows -> (T, Double) {
        let start = Date()
        let value = try await body()
        return (value, Date().timeIntervalSince(start))
    }

    /// The daemon's resident set now and its peak, in MiB.
    static func memory(_ daemon: Daemon) -> (now: Double, peak: Double) {
        let status =
            (try? String(contentsOfFile: "/proc/\(daemon.process.process.processIdentifier)/status", encoding: .utf8))
            ?? ""
        func field(_ name: String) -> Double {
            let line = status.split(separator: "\n").first { $0.hasPrefix(name) } ?? ""
            return Double(line.split(separator: " ").dropFirst().first ?? "0").map { $0 / 1024 } ?? 0
        }
        return (field("VmRSS:"), field("VmHWM:"))
    }

    @Test(.timeLimit(.minutes(3))) func theCLIListsAndRemovesAsOnACleanStore() async throws {
        let clean = try Self.store(hostile: false)
        let hostile = try Self.store(hostile: true)
        let (cleanList, cleanPeak) = try haulMeasured(["list"], models: clean.path)
        #expect(cleanList.status == 0, "\(cleanList.stderr)")
        let ((list, peak), seconds) = try await Self.timed { try haulMeasured(["list"], models: hostile.path) }
        #expect(list.status == 0, "\(list.stderr)")
        #expect(list.stdout.components(separatedBy: "hostile/list:v").count - 1 == 5, "\(list.stdout)")
        #expect(seconds < 3, "haul list took \(seconds) s (24 s before)")
        #expect(peak < cleanPeak + 64, "haul list peaked at \(peak) MiB, \(cleanPeak) MiB on a clean store")
        // Removing an unrelated model reads each list and child once.
        let ((rm, rmPeak), rmSeconds) = try await Self.timed {
            try haulMeasured(["rm", "example.com/team/tiny"], models: hostile.path)
        }
        #expect(rm.status == 0, "\(rm.stderr)")
        #expect(rmSeconds < 3, "haul rm took \(rmSeconds) s (5 s before)")
        #expect(rmPeak < cleanPeak + 64, "haul rm peaked at \(rmPeak) MiB")
        #expect(try ModelStore(root: hostile.path).list().count == 5, "the lists and their child are kept")
    }

    @Test(.timeLimit(.minutes(3))) func theDaemonListsAndMissesInMilliseconds() async throws {
        let hostile = try Self.store(hostile: true)
        let daemon = try await Daemon(
            models: hostile.path, logs: TempDir("haul-logs"), environment: ["HAUL_SERVE_REGISTRIES": "example.com"])
        // The first listing reads the child once; later ones stat it.
        let first = try await daemon.request("GET", "/api/tags")
        #expect(first.status == 200)
        #expect((first.json["models"] as? [[String: Any]])?.count == 6, "\(first.body.prefix(400))")
        let before = Self.memory(daemon)
        var times: [Double] = []
        for _ in 0..<5 {
            let (reply, seconds) = try await Self.timed { try await daemon.request("GET", "/api/tags") }
            #expect(reply.status == 200)
            times.append(seconds)
        }
        let median = times.sorted()[2]
        #expect(median < 0.5, "/api/tags took \(times) s (3.0 s before)")
        // Three at once hold no more than one does.
        let url = daemon.url
        try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<3 {
                group.addTask {
                    let (_, response) = try await URLSession.shared.data(from: URL(string: url + "/api/tags")!)
                    return (response as! HTTPURLResponse).statusCode
                }
            }
            for try await status in group { #expect(status == 200) }
        }
        let after = Self.memory(daemon)
        #expect(after.peak - before.now < 100, "peak \(after.peak) MiB from \(before.now) MiB (2.3 GB before)")
        // A /v2/ request for a blob of a model that does not exist reads
        // nothing of the store.
        let missing = "/v2/nobody/none/blobs/sha256:" + String(repeating: "0", count: 64) + "?ns=example.com"
        var misses: [Double] = []
        for _ in 0..<5 {
            let (reply, seconds) = try await Self.timed { try await daemon.request("GET", missing) }
            #expect(reply.status == 404, "\(reply.body)")
            misses.append(seconds)
        }
        #expect(misses.sorted()[2] < 0.1, "a /v2/ miss took \(misses) s (2.8 s before)")
        // And one of the hostile repository itself is still served.
        let manifest = try await daemon.request(
            "GET", "/v2/hostile/list/manifests/v1?ns=example.com",
            headers: ["Accept": "application/vnd.ollama.manifest.list.v2+json"])
        #expect(manifest.status == 200, "\(manifest.body.prefix(300))")
        _ = daemon.stop()
    }
}
