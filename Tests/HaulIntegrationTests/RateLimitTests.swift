import Foundation
import HaulTestSupport
import Testing

@testable import HaulKit

/// `--limit-rate` and `HAUL_LIMIT_RATE` against real servers that do not
/// limit (nginx with no limit_rate, the test registry): one bucket for all
/// connections, holding the average and never bursting.
@Suite(.serialized) struct RateLimitTests {
    /// Bytes on disk over time, read from a `--json` pull as it runs.
    static func samples(of process: BackgroundProcess) async throws -> [(t: Double, bytes: Int64)] {
        var out: [(Double, Int64)] = []
        var completed: [String: Int64] = [:]
        let start = Date()
        var running = true
        while running {
            running = process.process.isRunning
            for line in process.stdout.split(separator: "\n") {
                guard let o = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any],
                    let digest = o["digest"] as? String, let c = o["completed"] as? Int
                else { continue }
                completed[digest] = max(completed[digest] ?? 0, Int64(c))
            }
            out.append((Date().timeIntervalSince(start), completed.values.reduce(0, +)))
            if running { try await Task.sleep(for: .milliseconds(100)) }
        }
        return out
    }

    @Test func twentySecondsAtTheLimitFromAnUnlimitedNginx() async throws {
        let dir = TempDir("haul-rate")
        let root = dir.sub("registry")
        let model = try TestModel.make(root: root, name: "library/big:latest", layers: ["80M"])
        let nginx = try await NginxRegistry(dir: dir, root: root)
        defer { withExtendedLifetime(nginx) {} }
        let registryPort = nginx.registryPort

        let rate = 4.0 * 1024 * 1024
        let pull = try BackgroundProcess(
            ["pull", "127.0.0.1:\(registryPort)/library/big", "--insecure", "--json", "--limit-rate", "4M"],
            models: TempDir("haul-models").path, logs: dir)
        let samples = try await Self.samples(of: pull)
        _ = pull.wait()
        #expect(pull.process.terminationStatus == 0, "\(pull.stderr)")
        let size = Double(model.layers[0].size)
        guard let first = samples.first(where: { $0.bytes > 0 }),
            let last = samples.first(where: { Double($0.bytes) >= size })
        else {
            Issue.record("no progress seen: \(pull.stdout.suffix(300))")
            return
        }
        let average = (size - Double(first.bytes)) / (last.t - first.t)
        #expect(abs(average / rate - 1) <= 0.05, "average \(Int(average)) B/s for a limit of \(Int(rate))")
        // Never more than a second's worth beyond the rate, over any stretch.
        var worst = 0.0
        for (i, a) in samples.enumerated() {
            for b in samples[(i + 1)...] where b.t - a.t >= 1 {
                worst = max(worst, Double(b.bytes - a.bytes) - rate * (b.t - a.t))
            }
        }
        #expect(worst <= rate, "a burst of \(Int(worst)) bytes beyond the rate")
        print(
            "limit-rate 4M over \(String(format: "%.1f", last.t - first.t)) s: average \(String(format: "%.3f", average / rate))x the limit, worst burst \(String(format: "%.2f", worst / rate)) s worth"
        )
    }

    @Test func theDaemonPullsUnchangedUnderHaulLimitRateAndBadRatesAreRefused() async throws {
        let fixture = TempDir("haul-rate-fixture")
        let model = try TestModel.make(root: fixture.path, name: "library/small:latest", layers: ["6M", "1K"])
        let registry = try TestRegistry(root: fixture.path, cdn: true)
        let models = TempDir("haul-models")
        let daemon = try await Daemon(
            models: models.path, logs: TempDir("haul-rate-logs"), environment: ["HAUL_LIMIT_RATE": "2M"])
        let started = Date()
        let reply = try await daemon.request(
            "POST", "/api/pull", body: #"{"model":"\#(registry.host)/library/small","insecure":true}"#)
        let seconds = Date().timeIntervalSince(started)
        #expect(reply.status == 200 && reply.lines.last?["status"] as? String == "success", "\(reply.body)")
        #expect(reply.lines.contains { $0["digest"] as? String == model.layers[0].digest.description })
        // 6 MiB at 2 MiB/s: the limit held (a lower bound only).
        #expect(seconds >= 2.5, "\(seconds) s")

        let bad = try run(
            haulBinary, ["pull", "x", "--limit-rate", "5X"], environment: ["OLLAMA_MODELS": TempDir("unused").path])
        #expect(bad.status == 1 && bad.stderr.contains("Error: invalid rate \"5X\""), "\(bad.stderr)")
        let empty = TempDir("haul-models")
        let badEnv = try run(
            haulBinary, ["pull", "\(registry.host)/library/small", "--insecure"],
            environment: ["OLLAMA_MODELS": empty.path, "HAUL_LIMIT_RATE": "fast"])
        #expect(badEnv.status == 1 && badEnv.stderr.contains("invalid rate \"fast\""))
        #expect(listFiles(empty.path).isEmpty, "nothing half-written")
    }
}
