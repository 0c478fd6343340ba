import Foundation
import HaulTestSupport
import Synchronization
import Testing

@testable import HaulKit

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Models built to make `haul serve` work without end, pulled from the test
/// registry into a real daemon: a 4 MiB template whose capability scan was
/// quadratic, a 4 MiB licence listed 4,000 times (16 GiB if read per
/// entry), among 300 stored models. Listing and showing stay bounded in
/// time and memory, other requests are answered meanwhile, and SIGTERM
/// still stops the daemon. Timings are asserted loosely (an order of
/// magnitude above what they take); the bench is where speed is claimed.
@Suite(.serialized) struct HostileModelTests {
    static let fixture: (dir: TempDir, names: [String]) = {
        let dir = TempDir("haul-hostile-models")
        let files = TempDir("haul-hostile-files")
        // `{{.Thinking}}` after text inside `range .Messages`: the old scan
        // trimmed the whole open block at each of the 250,000 of them.
        let thinking = "{{range .Messages}}" + String(repeating: "a{{.Thinking}}", count: (4 << 20) / 15) + "{{end}}"
        // 4 MiB of `{{.X}}`: the old scan searched the rest for `{{` anew each time.
        let actions = String(repeating: "{{.X}}", count: (4 << 20) / 7)
        let license = String(repeating: "All rights reserved. ", count: (4 << 20) / 21)
        for (name, text) in [("thinking.txt", thinking), ("actions.txt", actions), ("license.txt", license)] {
            try! text.write(toFile: files.sub(name), atomically: true, encoding: .utf8)
        }
        let makes: [(String, [String])] = [
            (
                "hostile/thinking:latest",
                ["--file", files.sub("thinking.txt") + ":application/vnd.ollama.image.template", "--layer", "1K"]
            ),
            (
                "hostile/actions:latest",
                ["--file", files.sub("actions.txt") + ":application/vnd.ollama.image.template", "--layer", "1K"]
            ),
            (
                "hostile/license:latest",
                [
                    "--file", files.sub("license.txt") + ":application/vnd.ollama.image.license",
                    "--repeat", "4000"
                ]
            )
        ]
        for (name, args) in makes {
            let r = try! run(
                "/usr/bin/env",
                ["python3", TestRegistry.script, "make-model", "--root", dir.path, "--name", name] + args)
            precondition(r.status == 0, r.stderr)
        }
        return (dir, makes.map(\.0))
    }()

    /// The daemon's peak resident set so far, in MiB (`VmHWM`).
    static func peakMiB(_ daemon: Daemon) -> Double {
        let status =
            (try? String(contentsOfFile: "/proc/\(daemon.process.process.processIdentifier)/status", encoding: .utf8))
            ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmHWM:") } ?? ""
        return Double(line.split(separator: " ").dropFirst().first ?? "0").map { $0 / 1024 } ?? 0
    }

    static func timed<T>(_ body: () async throws -> T) async rethrows -> (T, Double) {
        let start = Date()
        let value = try await body()
        return (value, Date().timeIntervalSince(start))
    }

    @Test(.timeLimit(.minutes(5))) func hostileModelsAmongThreeHundredStayBoundedAndTheDaemonStaysResponsive()
        async throws
    {
        let registry = try TestRegistry(root: Self.fixture.dir.path, cdn: true)
        defer { registry.stop() }
        let models = TempDir("haul-models")
        let logs = TempDir("haul-logs")
        // 297 ordinary models written into the store beside them.
        let store = ModelStore(root: models.path)
        for i in 0..<297 {
            _ = try StoredModel.write(
                "example.com/filler/m\(i):latest",
                layers: [
                    ("application/vnd.ollama.image.template", "{{ .Prompt }} \(i)"),
                    ("application/vnd.ollama.image.license", "MIT \(i)")
                ], into: store)
        }
        let daemon = try await Daemon(models: models.path, logs: logs)
        for name in Self.fixture.names {
            let pull = try await daemon.request(
                "POST", "/api/pull",
                body: #"{"model":"\#(registry.host)/\#(name)","insecure":true,"stream":false}"#)
            #expect(pull.status == 200 && pull.json["status"] as? String == "success", "\(name): \(pull.body)")
        }

        // The first listing scans the templates (once per blob); later ones
        // read manifests and remembered facts.
        let (first, firstSeconds) = try await Self.timed { try await daemon.request("GET", "/api/tags") }
        #expect(
            first.status == 200 && (first.json["models"] as? [[String: Any]])?.count == 300, "\(first.body.prefix(300))"
        )
        #expect(firstSeconds < 5, "first /api/tags took \(firstSeconds) s")
        let (_, againSeconds) = try await Self.timed { try await daemon.request("GET", "/api/tags") }
        #expect(againSeconds < 1, "/api/tags of 300 models took \(againSeconds) s")
        let listed = Dictionary(
            uniqueKeysWithValues: ((first.json["models"] as? [[String: Any]]) ?? []).map {
                ($0["name"] as? String ?? "", $0["capabilities"] as? [String] ?? [])
            })
        #expect(listed["\(registry.host)/hostile/thinking:latest"]?.contains("thinking") == true, "\(listed)")

        // Shows of the hostile models, with /api/version asked meanwhile.
        let done = DoneFlag()
        let (url, host, names) = (daemon.url, registry.host, Self.fixture.names)
        let shows = Task { () async throws -> [(status: Int, body: Data)] in
            defer { done.set() }
            return try await withThrowingTaskGroup(of: (status: Int, body: Data).self) { group in
                for name in names + names {
                    group.addTask {
                        var request = URLRequest(url: URL(string: url + "/api/show")!)
                        request.httpMethod = "POST"
                        request.timeoutInterval = 120
                        request.httpBody = Data(#"{"model":"\#(host)/\#(name)"}"#.utf8)
                        let (data, response) = try await URLSession.shared.data(for: request)
                        return ((response as? HTTPURLResponse)?.statusCode ?? 0, data)
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
        }
        var slowest = 0.0
        while !done.isSet {
            let (version, seconds) = try await Self.timed { try await daemon.request("GET", "/api/version") }
            #expect(version.status == 200)
            slowest = max(slowest, seconds)
            try await Task.sleep(for: .milliseconds(20))
        }
        let replies = try await shows.value
        #expect(replies.allSatisfy { $0.status == 200 }, "\(replies.map(\.status))")
        #expect(slowest < 0.5, "/api/version took up to \(slowest) s while models were shown")
        // One licence, not 4,000 copies of it.
        let license =
            replies.compactMap {
                ((try? JSONSerialization.jsonObject(with: $0.body)) as? [String: Any])?["license"] as? String
            }
            .first ?? ""
        #expect(
            license.utf8.count >= 4 << 20 - 64 && license.utf8.count < 5 << 20, "licence of \(license.utf8.count) bytes"
        )
        let peak = Self.peakMiB(daemon)
        #expect(peak > 0 && peak < 200, "peak RSS \(peak) MiB")

        print(
            "hostile models: first /api/tags \(firstSeconds) s, again \(againSeconds) s; /api/version at most \(slowest) s "
                + "during \(replies.count) shows; peak RSS \(peak) MiB")
        let (status, seconds) = daemon.stop()
        #expect(status == 0 && seconds < 10, "SIGTERM: exit \(status) after \(seconds) s")
    }
}

/// Set once, read from another task.
final class DoneFlag: Sendable {
    private let value = Mutex(false)
    func set() { value.withLock { $0 = true } }
    var isSet: Bool { value.withLock { $0 } }
}
