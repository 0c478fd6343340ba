/// A request the engine performs into memory (manifests, tokens): small
/// bodies only, bounded by `limit`.
struct HTTPRequest: Sendable {
    var url: String
    var headers: [String] = []
    var followRedirects = false
    var limit = 4 << 20
    /// A mirror's own TLS settings, if it has any.
    var tls: HostTLS?
    /// HEAD instead of GET: status and headers only.
    var head = false
    /// Which addresses its connections (and the redirects curl follows) may reach.
    var addressPolicy: AddressPolicy
}

/// TLS settings of one host (a hosts.toml `ca`, `skip_verify`), in place of
/// the engine's for requests to it.
struct HostTLS: Sendable, Equatable {
    var caFile: String?
    var skipVerify = false
}

struct HTTPResponse: Sendable {
    var status: Int
    var body: [UInt8]
    /// Where a 3xx points (not followed unless asked).
    var redirectURL: String?
    /// The URL of the last request, after any redirects curl followed.
    var effectiveURL: String
    /// Selected headers of the last response, by lower-cased name.
    var headers: [String: String]

    static let capturedHeaders = ["content-type", "content-length", "www-authenticate", "retry-after", "docker-content-digest", "location"]
}
