import Foundation
import HaulTestSupport
import MetricsTestKit
import Testing

@testable import HaulKit

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// `haul serve`'s `GET /metrics`, scraped by prometheus_client's own text
/// parser (PyPI) during and after real pulls, and its pull log line.
@Suite(.serialized) struct MetricsTests {
    /// Samples of one scrape: `value(name, labels)` sums the samples named
    /// `name` whose labels include `labels`.
    struct Scrape {
        let samples: [(name: String, labels: [String: String], value: Double)]
        let types: [String: String]

        func value(_ name: String, _ labels: [String: String] = [:]) -> Double {
            samples.filter { sample in sample.name == name && labels.allSatisfy { sample.labels[$0.key] == $0.value } }
                .reduce(0) { $0 + $1.value }
        }

        func has(_ name: String) -> Bool { samples.contains { $0.name == name } }
    }

    static func scrape(_ url: String) throws -> Scrape {
        let check = try run(
            try DaemonTests.python, [testsDirectory.appendingPathComponent("clients/prometheus_scrape.py").path, url])
        guard check.status == 0,
            let object = try JSONSerialization.jsonObject(with: Data(check.stdout.utf8)) as? [String: Any],
            let raw = object["samples"] as? [[Any]]
        else {
            throw TestFailure("the scrape of \(url) did not parse: \(check.stderr)")
        }
        let samples = raw.compactMap { s -> (String, [String: String], Double)? in
            guard s.count == 3, let name = s[0] as? String, let labels = s[1] as? [String: String],
                let value = (s[2] as? NSNumber)?.doubleValue
            else { return nil }
            return (name, labels, value)
        }
        return Scrape(samples: samples, types: object["types"] as? [String: String] ?? [:])
    }

    @Test(.timeLimit(.minutes(3))) func countersMoveDuringAndAfterAPull() async throws {
        let root = TempDir("haul-metrics")
        try FileManager.default.createDirectory(atPath: root.sub("blobs"), withIntermediateDirectories: true)
        let model = try TestModel.make(root: root.path, name: "library/watched:latest", layers: ["64M"])
        // 2 MB/s per connection: a pull of several seconds, to scrape in its middle.
        let registry = try TestRegistry(root: root.path, cdn: true, rate: "2M")
        let cdn = "127.0.0.1:\(try #require(registry.cdnPort))"
        let models = TempDir("haul-models")
        let logs = TempDir("haul-logs")
        let daemon = try await Daemon(
            models: models.path, logs: logs,
            environment: ["HAUL_LOG_FORMAT": "json", "HAUL_SERVE_REGISTRIES": registry.host])
        let metrics = daemon.url + "/metrics"
        let name = "\(registry.host)/library/watched"

        let before = try Self.scrape(metrics)
        #expect(before.value("haul_pulls_started_total") == 0)
        #expect(
            before.types["haul_pulls_started"] == "counter" || before.types["haul_pulls_started_total"] == "counter",
            "\(before.types)")

        let pull = try daemon.curlPull(name, logs: logs)
        var during: Scrape?
        #expect(
            try await waitUntil(timeout: 60) {
                let s = try Self.scrape(metrics)
                during = s
                // Past the config blob: the big layer is arriving.
                return s.value("haul_downloaded_bytes_total", ["host": cdn]) > 1e6 || !pull.process.isRunning
            })
        let mid = try #require(during)
        #expect(pull.process.isRunning, "the pull ended before a scrape saw it")
        #expect(mid.value("haul_pulls_started_total") == 1)
        #expect(mid.value("haul_pulls_active") == 1)
        #expect(mid.value("haul_origin_connections", ["host": cdn]) >= 1)
        #expect(mid.value("haul_origin_connection_limit", ["host": cdn]) >= 1)
        pull.wait()
        #expect(pull.stdout.contains("\"success\""), "\(pull.stdout.suffix(500))")
        // The store is measured at most once a second.
        try await Task.sleep(for: .seconds(1.1))
        let after = try Self.scrape(metrics)
        let size = Double(model.layers.reduce(0) { $0 + $1.size })
        #expect(after.value("haul_pulls_total", ["outcome": "success", "reason": "none"]) == 1)
        #expect(after.value("haul_pulls_active") == 0)
        #expect(after.value("haul_origin_connections", ["host": cdn]) == 0)
        // Every byte came from the CDN listener, each once (within the
        // re-fetch of a split); the registry itself sent none.
        let fromCDN = after.value("haul_downloaded_bytes_total", ["host": cdn])
        #expect(fromCDN >= size && fromCDN < size * 1.05, "\(fromCDN) of \(size)")
        #expect(after.value("haul_downloaded_bytes_total", ["host": registry.host]) == 0)
        #expect(after.value("haul_store_bytes") >= size)
        #expect(after.value("haul_http_requests_total", ["route": "/api/pull", "method": "POST", "status": "200"]) == 1)
        #expect(after.value("haul_http_request_duration_seconds_count", ["route": "/api/pull", "method": "POST"]) == 1)
        #expect(
            after.value("haul_http_request_duration_seconds_sum", ["route": "/api/pull", "method": "POST"]) >= 1,
            "the stream is timed to its last line")

        // A model that is not there: a failure, by its class.
        let missing = try await daemon.request(
            "POST", "/api/pull", body: #"{"model":"\#(registry.host)/library/absent","insecure":true}"#)
        #expect(missing.body.contains("error"))
        // The node's /v2/ serves the stored blob: its bytes are counted.
        let layer = try #require(model.layers.first)
        // (by curl: Foundation's URLSession takes a minute and a half over 64 MiB)
        let served = try run(
            "/usr/bin/curl",
            [
                "-s", "-o", "/dev/null", "-w", "%{http_code}",
                daemon.url + "/v2/library/watched/blobs/\(layer.digest)?ns=\(registry.host)"
            ])
        let last = try Self.scrape(metrics)
        #expect(last.value("haul_pulls_total", ["outcome": "failure", "reason": "not_found"]) == 1)
        #expect(last.value("haul_pulls_started_total") == 2)
        #expect(served.stdout == "200")
        #expect(last.value("haul_registry_served_bytes_total") == Double(layer.size))

        // One structured line per pull, on standard error.
        #expect(daemon.stop().status == 0)
        let lines = daemon.process.stderr.split(separator: "\n").compactMap {
            (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any]
        }.filter { $0["message"] as? String == "pull" }
        #expect(lines.count == 2, "\(daemon.process.stderr.suffix(2000))")
        let ok = try #require(lines.first { $0["outcome"] as? String == "success" })
        #expect(ok["model"] as? String == "\(registry.host)/library/watched:latest")
        #expect((ok["digest"] as? String)?.hasPrefix("sha256:") == true)
        let manifest = try Manifest(bytes: Array(try Data(contentsOf: URL(fileURLWithPath: model.manifestPath))))
        // The layers' bytes (the config may come before the plan, with the manifest).
        let bytes = Double(ok["bytes"] as? String ?? "") ?? 0
        #expect(bytes >= size && bytes <= size + Double(manifest.config.size), "\(ok)")
        #expect(ok["sources"] as? [String] == [registry.host], "where the blobs came from: \(ok)")
        #expect(Double(ok["seconds"] as? String ?? "") ?? 0 > 0)
        let failed = try #require(lines.first { $0["outcome"] as? String == "failure" })
        #expect(failed["reason"] as? String == "not_found")
    }

    /// An embedder's own swift-metrics factory (MetricsTestKit's) sees the
    /// pull's mirror skips and digest mismatches by host: a mirror that is
    /// down is skipped, the registry's first copy of the layer has altered
    /// bytes (discarded and fetched again), and the pull succeeds.
    @Test func mismatchesAndMirrorSkipsAreCountedByHost() async throws {
        let root = TempDir("haul-metrics")
        try FileManager.default.createDirectory(atPath: root.sub("blobs"), withIntermediateDirectories: true)
        _ = try TestModel.make(root: root.path, name: "library/skipped:latest", layers: ["8M"])
        let registry = try TestRegistry(root: root.path, cdn: false)
        try await registry.arm([["kind": "none", "alter": 4096, "alter_from": 1 << 20, "times": 1, "min_size": 1 << 20]]
        )
        let dead = "127.0.0.1:\(freePort())"
        let hosts = try MirrorTests.hostsDirectory(for: registry.host, mirrors: ["http://\(dead)"])
        let metrics = TestMetrics()
        let haul = Haul(
            store: ModelStore(root: TempDir("haul-models").path), hosts: HostsDirectory(directories: [hosts.path]),
            metrics: HaulMetrics(factory: metrics))
        for try await _ in haul.pull("\(registry.host)/library/skipped", insecure: true) {}
        #expect(try metrics.expectCounter("haul_mirror_skips_total", [("host", dead)]).totalValue >= 1)
        #expect(try metrics.expectCounter("haul_digest_mismatches_total", [("host", registry.host)]).totalValue == 1)
        #expect(
            try metrics.expectCounter("haul_pulls_total", [("outcome", "success"), ("reason", "none")]).totalValue == 1)
        #expect(
            try metrics.expectCounter("haul_downloaded_bytes_total", [("host", registry.host)]).totalValue >= 2
                * (8 << 20),
            "the layer came twice")
        #expect(try metrics.expectMeter("haul_pulls_active").lastValue == 0)
    }

    /// The access rules of every other route hold for `/metrics`: a web
    /// page (a foreign `Origin`) and a DNS-rebound name (a foreign `Host`)
    /// are refused; with HAUL_METRICS_ADDR it moves to a listener of its
    /// own and is gone from the API's.
    @Test func metricsKeepTheAccessRulesAndMoveToTheirOwnListener() async throws {
        let daemon = try await Daemon(models: TempDir("haul-models").path, logs: TempDir("haul-logs"))
        let page = try await daemon.request("GET", "/metrics", headers: ["Origin": "https://evil.example"])
        #expect(page.status == 403)
        let rebound = try await daemon.request("GET", "/metrics", headers: ["Host": "evil.example"])
        #expect(rebound.status == 403)
        let plain = try await daemon.request("GET", "/metrics")
        #expect(plain.status == 200 && plain.contentType?.hasPrefix("text/plain; version=0.0.4") == true)
        #expect(daemon.stop().status == 0)

        let port = try freePort()
        let separate = try await Daemon(
            models: TempDir("haul-models").path, logs: TempDir("haul-logs"),
            environment: ["HAUL_METRICS_ADDR": "127.0.0.1:\(port)"])
        #expect(try await separate.request("GET", "/metrics").status == 404)
        #expect(try await waitUntil(timeout: 10) { (try? Self.scrape("http://127.0.0.1:\(port)/metrics")) != nil })
        let scraped = try Self.scrape("http://127.0.0.1:\(port)/metrics")
        #expect(scraped.has("haul_pulls_started_total"))
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)/metrics")!)
        request.setValue("https://evil.example", forHTTPHeaderField: "Origin")
        let (_, response) = try await URLSession.shared.data(for: request)
        #expect((response as? HTTPURLResponse)?.statusCode == 403)
        #expect(separate.stop().status == 0)
    }
}
