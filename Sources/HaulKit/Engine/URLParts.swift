/// The pieces of an absolute http(s) URL that redirect policy needs.
struct URLParts: Equatable {
    let scheme: String
    /// Host without port or user info, lower-cased.
    let host: String
    /// The explicit port, else the scheme's default.
    let port: Int

    /// Same scheme, host and port: RFC 6454's origin.
    func sameOrigin(_ other: URLParts) -> Bool {
        scheme == other.scheme && host == other.host && port == other.port
    }

    init?(_ url: String) {
        guard let sep = url.range(of: "://") else { return nil }
        let scheme = url[..<sep.lowerBound].lowercased()
        guard scheme == "http" || scheme == "https" else { return nil }
        var authority = url[sep.upperBound...].prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        if let at = authority.lastIndex(of: "@") { authority = authority[authority.index(after: at)...] }
        let host: Substring
        if authority.hasPrefix("["), let close = authority.firstIndex(of: "]") {
            host = authority[...close]
        } else {
            host = authority.prefix { $0 != ":" }
        }
        guard !host.isEmpty else { return nil }
        let rest = authority[host.endIndex...]
        if rest.isEmpty {
            port = scheme == "https" ? 443 : 80
        } else {
            guard rest.hasPrefix(":"), let p = Int(rest.dropFirst()), (1...65535).contains(p) else { return nil }
            port = p
        }
        self.scheme = scheme
        self.host = host.lowercased()
    }
}
