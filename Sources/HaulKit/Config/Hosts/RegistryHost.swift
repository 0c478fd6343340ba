/// One place a model's manifest or blobs may come from: a mirror from a
/// `hosts.toml` (containerd's format), or the registry itself (`server`).
///
/// Trust: a manifest (tag → digest) is taken only from a host that may
/// `resolve`; blobs may come from any host that may `pull`, since each is
/// verified against its digest before it is stored.
public struct RegistryHost: Sendable, Equatable, CustomStringConvertible {
    /// What a host may be asked for, as containerd names it.
    public struct Capabilities: OptionSet, Sendable, Hashable {
        /// The option bits.
        public let rawValue: Int
        /// Capabilities from their bits.
        public init(rawValue: Int) { self.rawValue = rawValue }
        /// Blobs may be fetched from the host (each is verified by its digest).
        public static let pull = Capabilities(rawValue: 1)
        /// The host may answer which manifest a tag names: trusted with the tag.
        public static let resolve = Capabilities(rawValue: 2)
        /// Both: what the registry itself, and containerd's default for a mirror, may do.
        public static let all: Capabilities = [.pull, .resolve]
    }

    /// The API root, without a trailing slash: requests go to
    /// `root/<repository>/manifests/<tag>` (`https://mirror.example/v2`).
    public let root: String
    /// What this host may be asked for.
    public let capabilities: Capabilities
    /// TLS for this host only: a CA bundle, or no verification at all.
    public let caFile: String?
    /// Accept any certificate from this host (`skip_verify = true`).
    public let skipVerify: Bool
    /// Extra request headers for this host (`Name: value`).
    public let headers: [String]
    /// A mirror, not the registry itself: its requests say which upstream
    /// they are for (`?ns=<registry host>`, as containerd sends).
    public let isMirror: Bool

    /// A host by its API root (trailing slashes dropped) and its settings.
    public init(
        root: String, capabilities: Capabilities = .all, caFile: String? = nil, skipVerify: Bool = false,
        headers: [String] = [], isMirror: Bool
    ) {
        var root = root
        while root.hasSuffix("/") { root.removeLast() }
        self.root = root
        self.capabilities = capabilities
        self.caFile = caFile
        self.skipVerify = skipVerify
        self.headers = headers
        self.isMirror = isMirror
    }

    /// `scheme://host[:port]` of the root.
    public var origin: String {
        guard let sep = root.range(of: "://") else { return root }
        let rest = root[sep.upperBound...]
        return String(root[..<sep.upperBound]) + rest.prefix { $0 != "/" }
    }

    /// `host[:port]`, for messages and credentials.
    public var authority: String {
        String(origin.drop { $0 != ":" }.dropFirst(3))
    }

    public var description: String { isMirror ? "mirror \(authority)" : authority }

    /// The registry itself, at `scheme://host`, API root `/v2`.
    static func upstream(_ name: ModelName, insecure: Bool) -> RegistryHost {
        RegistryHost(root: "\(insecure ? "http" : (name.scheme ?? "https"))://\(name.host)/v2", isMirror: false)
    }

    func manifestURL(_ name: ModelName) -> String { url(name, "manifests/\(name.tag)") }

    func blobURL(_ name: ModelName, _ digest: Digest) -> String { url(name, "blobs/\(digest)") }

    private func url(_ name: ModelName, _ tail: String) -> String {
        let path = "\(root)/\(name.repository)/\(tail)"
        return isMirror ? path + "?ns=" + Self.queryEscaped(name.host) : path
    }

    private static func queryEscaped(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                out += "%" + String(byte, radix: 16, uppercase: true).leftPadded(to: 2)
            }
        }
        return out
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
