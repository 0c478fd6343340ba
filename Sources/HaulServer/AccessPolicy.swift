import Foundation
import HaulKit
import Hummingbird

#if canImport(Glibc)
import Glibc
#endif

/// Who may call the daemon, decided as Ollama decides it, so that a web
/// page in the user's browser cannot drive it:
///
/// - Cross-origin requests (an `Origin` header naming another origin) are
///   answered only for the origins Ollama allows by default (localhost,
///   127.0.0.1 and 0.0.0.0 on any port, app://, file://, tauri://,
///   vscode-webview://, vscode-file://, browser extensions) plus those in
///   `OLLAMA_ORIGINS`; anything else gets 403. Preflights of allowed
///   origins get 204 with the CORS headers (Ollama's `cors.Config` in
///   server/routes.go `Serve`, envconfig `AllowedOrigins`).
/// - When the daemon listens on a loopback address, the `Host` header must
///   name this machine (a loopback, private, unspecified or local interface
///   address; `localhost`, the hostname, or a `.localhost`, `.local` or
///   `.internal` name), which defeats DNS rebinding (server/routes.go
///   `allowedHostsMiddleware`).
struct AccessPolicy: Sendable {
    let origins: [String]
    let checkHost: Bool

    init(_ access: HaulDaemon.Access) {
        origins = Self.allowedOrigins(access.allowedOrigins)
        checkHost = access.checkHost
    }

    /// envconfig.AllowedOrigins: `OLLAMA_ORIGINS` first, then the defaults.
    static func allowedOrigins(_ configured: [String]) -> [String] {
        var out = configured.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }.filter { !$0.isEmpty }
        for host in ["localhost", "127.0.0.1", "0.0.0.0"] {
            out += ["http://\(host)", "https://\(host)", "http://\(host):*", "https://\(host):*"]
        }
        return out + ["app://*", "file://*", "tauri://*", "vscode-webview://*", "vscode-file://*"]
    }

    static let extensionSchemes = [
        "chrome-extension://", "safari-extension://", "moz-extension://", "ms-browser-extension://"
    ]

    /// gin-contrib/cors with AllowWildcard and AllowBrowserExtensions: an
    /// exact origin, or a pattern with one `*` matched by prefix and suffix.
    func allows(origin: String) -> Bool {
        let origin = origin.lowercased()
        if Self.extensionSchemes.contains(where: { origin.hasPrefix($0) }) { return true }
        return origins.contains { pattern in
            guard let star = pattern.firstIndex(of: "*") else { return pattern == origin }
            let prefix = pattern[..<star]
            let suffix = pattern[pattern.index(after: star)...]
            return origin.count >= prefix.count + suffix.count && origin.hasPrefix(prefix) && origin.hasSuffix(suffix)
        }
    }

    /// allowedHostsMiddleware's rule for the `Host` header's host part.
    func allows(host authority: String) -> Bool {
        guard checkHost else { return true }
        let host = Self.hostPart(of: authority).lowercased()
        if let address = IPAddress(host) {
            return address.isLoopback || address.isPrivate || address.isUnspecified || LocalAddresses.contains(address)
        }
        if host.isEmpty || host == "localhost" || host == Self.machineName { return true }
        return [".localhost", ".local", ".internal"].contains { host.hasSuffix($0) }
    }

    /// gethostname(2), lower-cased (Go's os.Hostname), without a DNS lookup.
    static let machineName: String = {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self).lowercased()
    }()

    /// `host:port`, `[v6]:port`, or a bare host, as Go's SplitHostPort
    /// (with the whole value as host when it has no port).
    static func hostPart(of authority: String) -> String {
        if authority.hasPrefix("["), let close = authority.firstIndex(of: "]") {
            return String(authority[authority.index(after: authority.startIndex)..<close])
        }
        if let colon = authority.lastIndex(of: ":"), authority.firstIndex(of: ":") == colon {
            return String(authority[..<colon])
        }
        return authority
    }

    static let allowHeaders = [
        "Authorization", "Content-Type", "User-Agent", "Accept", "X-Requested-With",
        // OpenAI's client libraries, which Ollama also allows.
        "OpenAI-Beta", "x-stainless-arch", "x-stainless-async", "x-stainless-custom-poll-interval",
        "x-stainless-helper-method", "x-stainless-lang", "x-stainless-os", "x-stainless-package-version",
        "x-stainless-poll-helper", "x-stainless-retry-count", "x-stainless-runtime", "x-stainless-runtime-version",
        "x-stainless-timeout"
    ].joined(separator: ",")
}

struct AccessMiddleware<Context: RequestContext>: RouterMiddleware {
    let policy: AccessPolicy

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        let authority = request.head.authority ?? ""
        var allowedOrigin: String?
        if let origin = request.headers[.origin], !origin.isEmpty,
            origin != "http://" + authority, origin != "https://" + authority
        {
            guard policy.allows(origin: origin) else { return Response(status: .forbidden) }
            allowedOrigin = origin
            if request.method == .options {
                guard policy.allows(host: authority) else { return Response(status: .forbidden) }
                var headers = HTTPFields()
                headers[.accessControlAllowOrigin] = origin
                headers[.accessControlAllowMethods] = "GET,POST,PUT,PATCH,DELETE,HEAD,OPTIONS"
                headers[.accessControlAllowHeaders] = AccessPolicy.allowHeaders
                headers[.accessControlMaxAge] = "43200"
                headers[.vary] = "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"
                return Response(status: .noContent, headers: headers)
            }
        }
        guard policy.allows(host: authority) else { return Response(status: .forbidden) }
        if request.method == .options { return Response(status: .noContent) }
        // A thrown API error becomes its response here, so that an allowed
        // page can read the error too.
        var response: Response
        do {
            response = try await next(request, context)
        } catch let error as any HTTPResponseError {
            response = try error.response(from: request, context: context)
        }
        if let allowedOrigin {
            response.headers[.accessControlAllowOrigin] = allowedOrigin
            response.headers[.vary] = "Origin"
        }
        return response
    }
}

/// An IPv4 or IPv6 address, with the classes Go's netip gives.
struct IPAddress: Hashable, Sendable {
    let bytes: [UInt8]

    init?(_ text: String) {
        var v4 = in_addr()
        var v6 = in6_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            bytes = withUnsafeBytes(of: v4) { Array($0) }
        } else if inet_pton(AF_INET6, text, &v6) == 1 {
            let raw = withUnsafeBytes(of: v6) { Array($0) }
            // An IPv4-mapped address is judged as the IPv4 address.
            bytes = raw[0..<10].allSatisfy { $0 == 0 } && raw[10] == 0xFF && raw[11] == 0xFF ? Array(raw[12...]) : raw
        } else {
            return nil
        }
    }

    init(bytes: [UInt8]) { self.bytes = bytes }

    var isLoopback: Bool { bytes.count == 4 ? bytes[0] == 127 : bytes == [UInt8](repeating: 0, count: 15) + [1] }
    var isUnspecified: Bool { bytes.allSatisfy { $0 == 0 } }
    var isPrivate: Bool {
        if bytes.count == 4 {
            return bytes[0] == 10 || (bytes[0] == 172 && bytes[1] & 0xF0 == 16) || (bytes[0] == 192 && bytes[1] == 168)
        }
        return bytes[0] & 0xFE == 0xFC
    }
}

/// The addresses of this machine's interfaces (Ollama's isLocalIP).
enum LocalAddresses {
    static func contains(_ address: IPAddress) -> Bool { current().contains(address) }

    static func current() -> Set<IPAddress> {
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0 else { return [] }
        defer { freeifaddrs(list) }
        var out = Set<IPAddress>()
        var entry = list
        while let e = entry {
            if let sa = e.pointee.ifa_addr {
                switch Int32(sa.pointee.sa_family) {
                case AF_INET:
                    let a = sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr }
                    out.insert(IPAddress(bytes: withUnsafeBytes(of: a) { Array($0) }))
                case AF_INET6:
                    let a = sa.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee.sin6_addr }
                    out.insert(IPAddress(bytes: withUnsafeBytes(of: a) { Array($0) }))
                default:
                    break
                }
            }
            entry = e.pointee.ifa_next
        }
        return out
    }
}
