import Foundation
import HaulKit

/// Pull-through for the daemon's registry API: a manifest asked for and not
/// stored is pulled from its upstream first, but only for upstreams the
/// operator listed in `HAUL_PULL_THROUGH`, so a daemon is never an open
/// proxy. Requests for the same model while it is being pulled wait for
/// that one pull (its blobs are shared with every other pull of the
/// `Haul`), so a hundred clients cause one download.
actor PullThrough {
    let haul: Haul
    /// Allowed upstream hosts (lower-cased `host[:port]`) and whether each
    /// is plain HTTP.
    let upstreams: [String: Bool]
    private var inFlight: [String: Task<Void, any Error>] = [:]

    init(haul: Haul, upstreams: [String: Bool]) {
        self.haul = haul
        self.upstreams = upstreams
    }

    /// `HAUL_PULL_THROUGH`: comma-separated `host[:port]` (HTTPS) or
    /// `http://host[:port]` (plain HTTP).
    static func upstreams(from value: String?) -> [String: Bool] {
        var out: [String: Bool] = [:]
        for entry in EnvironmentHosts.readable(value) { out[entry.authority] = entry.scheme == "http" }
        return out
    }

    nonisolated func allows(_ host: String) -> Bool { upstreams[host.lowercased()] != nil }

    /// Pulls `name` (for a manifest list, the child `runner` names, or the
    /// one that runs here) unless that pull is already running, then waits
    /// for that one.
    func pull(_ name: ModelName, runner: String? = nil) async throws {
        let key = "\(name.host)/\(name.repository):\(name.tag)".lowercased() + (runner.map { "#" + $0 } ?? "")
        if let running = inFlight[key] { return try await running.value }
        let insecure = upstreams[name.host.lowercased()] ?? false
        let haul = haul
        let task = Task {
            for try await _ in haul.pull(name, insecure: insecure, runner: runner) {}
        }
        inFlight[key] = task
        defer { inFlight[key] = nil }
        try await task.value
    }

    /// Waits for the pull-throughs of one repository running now (a blob
    /// asked for while its model is still arriving); another repository's
    /// pulls are not waited for.
    func settle(host: String, repository: String) async {
        let prefix = "\(host)/\(repository):".lowercased()
        for (key, task) in inFlight where key.hasPrefix(prefix) { _ = try? await task.value }
    }
}
