#if canImport(Glibc)
import Glibc
#endif

/// A fully qualified model reference, `host/namespace/model:tag`, parsed and
/// validated with Ollama's grammar (Ollama's `types/model/name.go`).
///
/// Every path Haul derives from a name is built from these four validated
/// parts, so a name can never point a write outside the models directory:
/// no part may contain `/`, start with `.`, or hold a non-ASCII byte.
public struct ModelName: Sendable, Hashable, CustomStringConvertible {
    /// The registry a name without a host means.
    public static let defaultHost = "registry.ollama.ai"
    /// The namespace a name without one means.
    public static let defaultNamespace = "library"
    /// The tag a name without one means.
    public static let defaultTag = "latest"

    /// The registry, `name[:port]`.
    public let host: String
    /// The registry namespace (`library`, a user or an organisation).
    public let namespace: String
    /// The model (repository) name.
    public let model: String
    /// The tag.
    public let tag: String
    /// The scheme written in the name (`http://host/...`), if any.
    public let scheme: String?

    /// A name from its parts, each checked against Ollama's grammar.
    public init(host: String, namespace: String, model: String, tag: String) throws(HaulError) {
        self.host = host
        self.namespace = namespace
        self.model = model
        self.tag = tag
        self.scheme = nil
        guard isValid else { throw .invalidModelName }
    }

    /// The same name written with `scheme` (`http://host/...`).
    func with(scheme: String?) -> ModelName {
        ModelName(host: host, namespace: namespace, model: model, tag: tag, scheme: scheme)
    }

    private init(host: String, namespace: String, model: String, tag: String, scheme: String?) {
        self.host = host
        self.namespace = namespace
        self.model = model
        self.tag = tag
        self.scheme = scheme
    }

    /// Parses `[scheme://][host/][namespace/]model[:tag]`, filling Ollama's
    /// defaults for the parts that are absent. Throws `invalid model name`.
    public init(parsing raw: String) throws(HaulError) {
        // An absent part takes the default; a part whose separator is present
        // but whose text is empty is "missing" and fails validation, exactly as
        // Ollama's cutPromised does.
        let missing = "\u{0}"
        var rest = Substring(raw)
        var tag = Self.defaultTag
        var namespace = Self.defaultNamespace
        var host = Self.defaultHost
        var scheme: String?

        if let colon = rest.lastIndex(of: ":"),
            rest.lastIndex(of: "/").map({ colon > $0 }) ?? true
        {
            let after = rest[rest.index(after: colon)...]
            tag = after.isEmpty ? missing : String(after)
            rest = rest[..<colon]
            if rest.isEmpty { rest = Substring(missing) }
        }
        let model: String
        if let slash = rest.lastIndex(of: "/") {
            let after = rest[rest.index(after: slash)...]
            model = after.isEmpty ? missing : String(after)
            rest = rest[..<slash]
            if rest.isEmpty { rest = Substring(missing) }
            if let slash2 = rest.lastIndex(of: "/") {
                let ns = rest[rest.index(after: slash2)...]
                namespace = ns.isEmpty ? missing : String(ns)
                var h = rest[..<slash2]
                if h.isEmpty { h = Substring(missing) }
                if let sep = h.range(of: "://") {
                    scheme = String(h[..<sep.lowerBound])
                    h = h[sep.upperBound...]
                }
                host = String(h)
            } else {
                namespace = String(rest)
            }
        } else {
            model = String(rest)
        }
        self.host = host
        self.namespace = namespace
        self.model = model
        self.tag = tag
        self.scheme = scheme
        guard isValid else { throw .invalidModelName }
        if let scheme, scheme != "http", scheme != "https" { throw .invalidModelName }
    }

    /// Ollama's `DisplayShortest`: drops the default host and namespace.
    public var displayShortest: String {
        if host.lowercased() != Self.defaultHost {
            return "\(host)/\(namespace)/\(model):\(tag)"
        }
        if namespace.lowercased() != Self.defaultNamespace {
            return "\(namespace)/\(model):\(tag)"
        }
        return "\(model):\(tag)"
    }

    public var description: String { "\(host)/\(namespace)/\(model):\(tag)" }

    /// The repository path used in registry URLs: `namespace/model`.
    public var repository: String { "\(namespace)/\(model)" }

    /// Path components of the manifest below `manifests/`.
    public var manifestPathComponents: [String] { [host, namespace, model, tag] }

    private var isValid: Bool {
        (host.hasPrefix("[") ? Self.validIPv6Host(host) : Self.valid(host, maxLength: 350, extra: "_-.:"))
            && Self.valid(namespace, maxLength: 80, extra: "_-")
            && Self.valid(model, maxLength: 80, extra: "_-.")
            && Self.valid(tag, maxLength: 80, extra: "_-.")
    }

    /// `[v6-address]` or `[v6-address]:port`, the address as `inet_pton`
    /// reads it (no zone). Beyond Ollama's grammar, which has no IPv6.
    private static func validIPv6Host(_ host: String) -> Bool {
        guard host.utf8.count <= 60, let close = host.firstIndex(of: "]") else { return false }
        let address = String(host[host.index(after: host.startIndex)..<close])
        let rest = host[host.index(after: close)...]
        if !rest.isEmpty {
            guard rest.hasPrefix(":"), let port = Int(rest.dropFirst()), (1...65535).contains(port),
                rest.dropFirst().allSatisfy(\.isNumber)
            else { return false }
        }
        var buffer = in6_addr()
        return address.contains(":") && inet_pton(AF_INET6, address, &buffer) == 1
    }

    private static func valid(_ part: String, maxLength: Int, extra: String) -> Bool {
        let bytes = Array(part.utf8)
        guard !bytes.isEmpty, bytes.count <= maxLength else { return false }
        let extraBytes = Set(extra.utf8)
        for (i, b) in bytes.enumerated() {
            let alnum = (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A)
            if alnum || b == UInt8(ascii: "_") { continue }
            if i > 0 && extraBytes.contains(b) { continue }
            return false
        }
        return true
    }
}
