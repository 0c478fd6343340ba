import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The one place a transfer's connections may go without an address check
/// when a proxy is configured: the proxy itself, by the addresses its host
/// resolves to and its port. Every other connection, a direct one to a
/// host `NO_PROXY` matches included, is judged by the address policy: with
/// `HTTP_PROXY` and `NO_PROXY=localhost,127.0.0.1,169.254.169.254` (a
/// usual corporate and cloud setting), a registry's redirect to
/// `127.0.0.1` reached the inside listener when the whole transfer was
/// exempt for having a proxy.
struct ProxyEndpoint: Sendable, Equatable {
    /// The proxy's host, lower-cased, without brackets.
    let host: String
    /// Its port: the URL's, else curl's default (1080; 443 for `https://`).
    let port: Int

    /// The proxy of `url` (curl's spelling: a scheme is optional); nil when
    /// it cannot be read, and then nothing is exempt.
    init?(_ url: String) {
        let text = url.contains("://") ? url : "http://" + url
        guard let separator = text.range(of: "://") else { return nil }
        let scheme = text[..<separator.lowerBound].lowercased()
        // URLParts reads http(s) URLs; a SOCKS proxy's authority reads the same.
        guard let parts = URLParts("http://" + text[separator.upperBound...]) else { return nil }
        var authority = text[separator.upperBound...].prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        if let at = authority.lastIndex(of: "@") { authority = authority[authority.index(after: at)...] }
        let hasPort = authority.hasPrefix("[") ? authority.contains("]:") : authority.contains(":")
        host = parts.host.trimmingCharacters(in: ["[", "]"])
        port = hasPort ? parts.port : (scheme == "https" ? 443 : 1080)
    }

    /// Whether a socket to `address:port` is a connection to this proxy.
    /// The host's addresses are resolved when first needed, and again for
    /// an address on the proxy's port that is not among them, at most once
    /// in `refresh` seconds (DNS may have moved the proxy). The lookup
    /// blocks the loop for as long as the resolver takes, so it is bounded
    /// by time, not by how many connections a registry makes.
    func isEndpoint(_ address: IPAddress, port: Int, now: Double = MonotonicClock.now()) -> Bool {
        guard port == self.port else { return false }
        if let literal = IPAddress(host) { return literal.unmapped == address.unmapped }
        let cached = Self.cache.withLock { $0[host] }
        if let cached, cached.addresses.contains(address.unmapped) || now - cached.at < Self.refresh {
            return cached.addresses.contains(address.unmapped)
        }
        let fresh = Self.resolve(host)
        Self.cache.withLock { $0[host] = (fresh, now) }
        return fresh.contains(address.unmapped)
    }

    /// The fewest seconds between two lookups of one proxy's host.
    static let refresh = 30.0

    private static let cache = Mutex<[String: (addresses: [IPAddress], at: Double)]>([:])

    /// Every address `host` resolves to, unmapped.
    static func resolve(_ host: String) -> [IPAddress] {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &list) == 0 else { return [] }
        defer { freeaddrinfo(list) }
        var out: [IPAddress] = []
        var node = list
        while let n = node {
            if let a = n.pointee.ai_addr, let ip = IPAddress(UnsafePointer(a), length: Int(n.pointee.ai_addrlen)) {
                out.append(ip.unmapped)
            }
            node = n.pointee.ai_next
        }
        return out
    }
}
