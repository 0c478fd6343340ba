import Foundation

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// `haul serve` on an ephemeral loopback port with its own models
/// directory; SIGTERM'd when released.
package final class Daemon {
    package let process: BackgroundProcess
    /// `http://127.0.0.1:PORT`
    package let url: String
    package var host: String { String(url.dropFirst("http://".count)) }

    package init(models: String, logs: TempDir, environment: [String: String] = [:], arguments: [String] = [])
        async throws
    {
        var env = environment
        env["OLLAMA_HOST"] = "127.0.0.1:0"
        // The test registries are on loopback, which a daemon reaches only
        // for hosts its operator lists; a test that checks the refusal
        // passes its own (empty) list.
        if env["HAUL_ALLOW_PRIVATE"] == nil { env["HAUL_ALLOW_PRIVATE"] = "127.0.0.1,::1,localhost" }
        let process = try BackgroundProcess(["serve"] + arguments, models: models, environment: env, logs: logs)
        self.process = process
        guard
            try await waitUntil(
                timeout: 30, { process.stdout.contains("listening on ") || !process.process.isRunning }),
            let match = process.stdout.firstMatch(of: /listening on (http:\/\/127\.0\.0\.1:\d+)/)
        else {
            throw TestFailure("haul serve did not start: \(process.stdout) \(process.stderr)")
        }
        url = String(match.1)
    }

    deinit {
        if process.process.isRunning {
            process.send(SIGKILL)
            process.wait()
        }
    }

    /// SIGTERM; returns the exit status and seconds it took to exit.
    package func stop() -> (status: Int32, seconds: Double) {
        process.send(SIGTERM)
        let seconds = process.wait()
        return (process.process.terminationStatus, seconds)
    }

    package struct Reply {
        package let status: Int
        package let body: String
        package let contentType: String?

        package var json: [String: Any] {
            (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:]
        }
        /// NDJSON lines as objects.
        package var lines: [[String: Any]] {
            body.split(separator: "\n").map {
                (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] ?? [:]
            }
        }
    }

    package func request(_ method: String, _ path: String, body: String? = nil, headers: [String: String] = [:])
        async throws -> Reply
    {
        var request = URLRequest(url: URL(string: url + path)!)
        request.httpMethod = method
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        request.timeoutInterval = 300
        if let body {
            request.httpBody = Data(body.utf8)
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        let (data, response) = try await URLSession.shared.data(for: request)
        let http = response as! HTTPURLResponse
        return Reply(
            status: http.statusCode, body: String(decoding: data, as: UTF8.self),
            contentType: http.value(forHTTPHeaderField: "Content-Type"))
    }

    /// A streaming `/api/pull` by a separate `curl` process, to be left
    /// running, killed (a client hanging up) or awaited.
    package func curlPull(_ model: String, logs: TempDir) throws -> BackgroundProcess {
        try BackgroundProcess(
            [
                "-s", "-N", "-X", "POST", url + "/api/pull",
                "-d", "{\"model\":\"\(model)\",\"insecure\":true}"
            ],
            executable: "/usr/bin/curl", models: "", logs: logs)
    }
}
