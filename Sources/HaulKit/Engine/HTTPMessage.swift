/// A request the engine performs with its response body kept in memory
/// (manifests, tokens, a registry's answers to uploads): small bodies
/// only, bounded by `limit`.
struct HTTPRequest: Sendable {
    /// What a request sends.
    enum Body: Sendable {
        /// Bytes in memory (a manifest).
        case bytes([UInt8])
        /// Bytes `range` of an open file, read as they are sent. The
        /// caller keeps the descriptor open until the request returns.
        /// With `md5`, the response carries the MD5 of the bytes sent.
        case file(fd: Int32, range: Range<Int64>, md5: Bool = false)
    }

    var url: String
    /// GET (HEAD with `head`) unless given: POST, PATCH, PUT, DELETE.
    var method: String?
    var body: Body?
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
    /// The MD5 of a file body sent whole, when the request asked for it.
    var bodyMD5: [UInt8]? = nil

    static let capturedHeaders = [
        "content-type", "content-length", "www-authenticate", "retry-after", "docker-content-digest", "location",
        "range", "oci-chunk-min-length", "link", "docker-upload-location"
    ]
}
