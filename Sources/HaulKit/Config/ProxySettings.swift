import Foundation

/// Proxies from the environment, with Go's rules (`http.ProxyFromEnvironment`),
/// which is what Ollama's users configure (Go's `net/http` `ProxyFromEnvironment`, which Ollama's server uses): `HTTPS_PROXY`
/// for https URLs, `HTTP_PROXY` for http URLs (upper case first, then lower
/// case; curl on its own would ignore upper-case `HTTP_PROXY`), and
/// `NO_PROXY` for hosts to reach directly (matched by curl: host names,
/// domain suffixes, IP addresses and CIDR ranges, `*` for all).
///
/// Unlike Go, loopback addresses are proxied when a proxy is set and
/// `NO_PROXY` does not exclude them, as curl does.
public struct ProxySettings: Sendable, Equatable {
    /// The proxy for `http://` URLs.
    public var http: String?
    /// The proxy for `https://` URLs.
    public var https: String?
    /// Hosts reached directly, in curl's `NO_PROXY` syntax.
    public var noProxy: String?

    /// Explicit proxies; none by default.
    public init(http: String? = nil, https: String? = nil, noProxy: String? = nil) {
        self.http = http
        self.https = https
        self.noProxy = noProxy
    }

    /// `HTTP_PROXY`, `HTTPS_PROXY` and `NO_PROXY`, upper case first, then lower case.
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment)
        -> ProxySettings
    {
        func first(_ keys: String...) -> String? {
            keys.lazy.compactMap { environment[$0]?.trimmingWhitespaceAndQuotes.nilIfEmpty }.first
        }
        return ProxySettings(
            http: first("HTTP_PROXY", "http_proxy"), https: first("HTTPS_PROXY", "https_proxy"),
            noProxy: first("NO_PROXY", "no_proxy"))
    }

    /// The proxy for `url`, by its scheme; nil to connect directly.
    public func proxy(for url: String) -> String? {
        url.lowercased().hasPrefix("https://") ? https : http
    }
}

extension String {
    var nilIfEmpty: String? { isEmpty ? nil : self }
}
