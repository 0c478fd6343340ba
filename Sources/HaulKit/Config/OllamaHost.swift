/// Where an Ollama server listens and where clients find it: `OLLAMA_HOST`
/// read with Ollama's rules (Ollama's `envconfig/config.go` `Host`).
///
///     ""                  -> http://127.0.0.1:11434
///     "0.0.0.0"           -> http://0.0.0.0:11434
///     ":8080"             -> http://:8080       (every interface)
///     "https://example"   -> https://example:443
///     "[::1]:9000/base"   -> http://[::1]:9000/base
///     "ollama.com"        -> https://ollama.com:443
///
/// An unusable port falls back to the default with a warning, as Ollama does.
public struct OllamaHost: Sendable, Equatable, CustomStringConvertible {
    /// Ollama's port.
    public static let defaultPort = 11434

    /// `http` or `https`.
    public let scheme: String
    /// Empty means every interface; an IPv6 literal is held without brackets.
    public let host: String
    /// The port, the scheme's default when the value names none.
    public let port: Int
    /// A path prefix after the host, without its leading slash.
    public let path: String
    /// Set when part of the value was ignored.
    public let warning: String?

    /// Reads an `OLLAMA_HOST` value; never fails (see `warning`).
    public init(parsing raw: String) {
        let value = raw.trimmingWhitespaceAndQuotes
        var scheme = "http"
        var hostport = value
        var defaultPort = Self.defaultPort
        if let sep = value.range(of: "://") {
            scheme = String(value[..<sep.lowerBound])
            hostport = String(value[sep.upperBound...])
            switch scheme {
            case "http": defaultPort = 80
            case "https": defaultPort = 443
            default: break
            }
        } else if value == "ollama.com" {
            (scheme, hostport) = ("https", "ollama.com:443")
        }
        var path = ""
        if let slash = hostport.firstIndex(of: "/") {
            path = String(hostport[hostport.index(after: slash)...])
            while path.hasSuffix("/") { path.removeLast() }
            hostport = String(hostport[..<slash])
        }
        var host = "127.0.0.1"
        var portText = String(defaultPort)
        if let (h, p) = Self.splitHostPort(hostport) {
            (host, portText) = (h, p)
        } else {
            let bare = hostport.trimmingCharacters(in: ["[", "]"])
            if !bare.isEmpty { host = bare }
        }
        var warning: String?
        var port = defaultPort
        if let n = Int(portText), (0...65535).contains(n) {
            port = n
        } else {
            warning = "OLLAMA_HOST: invalid port \"\(portText)\", using \(defaultPort)"
        }
        self.scheme = scheme
        self.host = host
        self.port = port
        self.path = path
        self.warning = warning
    }

    /// `OLLAMA_HOST`, or the default when it is unset.
    public static func fromEnvironment(_ environment: [String: String]) -> OllamaHost {
        OllamaHost(parsing: OllamaEnvironment.string("OLLAMA_HOST", environment))
    }

    /// Whether `OLLAMA_HOST` is set to something, which makes the CLI talk
    /// to that server instead of pulling by itself.
    public static func isSet(_ environment: [String: String]) -> Bool {
        !OllamaEnvironment.string("OLLAMA_HOST", environment).isEmpty
    }

    /// The address to bind: every interface for an empty host.
    public var bindHost: String { host.isEmpty ? "0.0.0.0" : host }

    /// Base URL for a client. A server bound to every interface is reached
    /// on loopback.
    public var clientURL: String {
        let target: String
        switch host {
        case "", "0.0.0.0": target = "127.0.0.1"
        case "::": target = "[::1]"
        default: target = host.contains(":") ? "[\(host)]" : host
        }
        return "\(scheme)://\(target):\(port)" + (path.isEmpty ? "" : "/" + path)
    }

    public var description: String {
        let h = host.contains(":") ? "[\(host)]" : host
        return "\(scheme)://\(h):\(port)" + (path.isEmpty ? "" : "/" + path)
    }

    /// Go's `net.SplitHostPort`: `host:port` or `[v6]:port`; nil when
    /// there is no port or the colons are ambiguous.
    static func splitHostPort(_ text: String) -> (String, String)? {
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { return nil }
            let host = String(text[text.index(after: text.startIndex)..<close])
            let port = String(rest.dropFirst())
            guard !port.contains(":"), !port.contains("[") else { return nil }
            return (host, port)
        }
        guard let colon = text.lastIndex(of: ":") else { return nil }
        let host = text[..<colon]
        guard !host.contains(":"), !host.contains("["), !host.contains("]") else { return nil }
        return (String(host), String(text[text.index(after: colon)...]))
    }
}
