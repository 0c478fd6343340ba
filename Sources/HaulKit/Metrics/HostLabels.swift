import Synchronization

/// The `host` label values a process hands out: the first `limit` hosts
/// keep their names, later ones are counted as `other`. The hosts come
/// from the registries, mirrors and redirects a pull meets, which in the
/// daemon its clients choose: without a bound, a client naming ever new
/// registries (or a registry redirecting to ever new CDN hosts) would grow
/// every scrape without end.
final class HostLabels: Sendable {
    static let other = "other"
    static let defaultLimit = 64
    let limit: Int
    private let seen = Mutex<Set<String>>([])

    init(limit: Int = defaultLimit) { self.limit = limit }

    /// `host` itself while fewer than `limit` hosts were seen, else `other`.
    func label(for host: String) -> String {
        seen.withLock { seen in
            if seen.contains(host) { return host }
            guard seen.count < limit else { return Self.other }
            seen.insert(host)
            return host
        }
    }
}
