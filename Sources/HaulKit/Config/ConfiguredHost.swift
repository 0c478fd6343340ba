import Foundation

/// One host an operator names in the environment (`HAUL_ALLOW_PRIVATE`,
/// `HAUL_PULL_THROUGH`, `HAUL_SERVE_REGISTRIES`), read one way wherever it
/// is read. The spellings the README shows are accepted:
///
///     registry.internal          host
///     registry.internal:5000     host:port
///     http://10.0.0.9:5000       scheme://host[:port] (http or https; a trailing / is allowed)
///     [fd00::1]:5000, ::1        IPv6, bracketed with a port, or bare
///
/// Anything else (a path, another scheme, a port that is not 1–65535, a
/// character no host name has, `*`) is refused with an error naming the
/// variable, so a typo is found at startup rather than by a pull that is
/// refused, or allowed, later.
public struct ConfiguredHost: Sendable, Hashable, CustomStringConvertible {
    /// `http` or `https` when the entry names one.
    public let scheme: String?
    /// The host, lower-cased, an IPv6 address without brackets.
    public let host: String
    /// The port, when the entry names one.
    public let port: Int?

    /// `host[:port]` as a model name spells its registry (IPv6 bracketed).
    public var authority: String {
        let h = host.contains(":") ? "[\(host)]" : host
        return port.map { "\(h):\($0)" } ?? h
    }

    public var description: String { (scheme.map { $0 + "://" } ?? "") + authority }

    /// Reads one entry; nil when it is not one of the spellings above.
    public init?(parsing text: some StringProtocol) {
        var rest = String(text).trimmingCharacters(in: .whitespaces).lowercased()
        var scheme: String?
        if let separator = rest.range(of: "://") {
            let named = String(rest[..<separator.lowerBound])
            guard named == "http" || named == "https" else { return nil }
            scheme = named
            rest = String(rest[separator.upperBound...])
            if rest.hasSuffix("/") { rest.removeLast() }
        }
        var port: Int?
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { return nil }
            let after = rest[rest.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":"), let p = WireNumber.parse(after.dropFirst(), in: 1...65535) else {
                    return nil
                }
                port = Int(p)
            }
            rest = String(rest[rest.index(after: rest.startIndex)..<close])
            guard Self.isIPv6(rest) else { return nil }
        } else if rest.filter({ $0 == ":" }).count > 1 {
            guard Self.isIPv6(rest) else { return nil }  // a bare IPv6 address, no port
        } else if let colon = rest.firstIndex(of: ":") {
            guard let p = WireNumber.parse(rest[rest.index(after: colon)...], in: 1...65535) else { return nil }
            port = Int(p)
            rest = String(rest[..<colon])
        }
        guard rest.contains(":") || Self.isHostName(rest) else { return nil }
        self.scheme = scheme
        self.host = rest
        self.port = port
    }

    /// Letters, digits, `-`, `_` and dots, not starting or ending with a dot.
    static func isHostName(_ text: String) -> Bool {
        !text.isEmpty && text.count <= 253 && !text.hasPrefix(".") && !text.hasSuffix(".")
            && text.utf8.allSatisfy { b in
                (b >= 0x61 && b <= 0x7A) || (b >= 0x30 && b <= 0x39) || b == 0x2D || b == 0x2E || b == 0x5F
            }
    }

    static func isIPv6(_ text: String) -> Bool {
        if case .v6? = IPAddress(text) { return true }
        return false
    }
}

/// A variable of the environment whose value Haul cannot use: the text a
/// user sees at startup, naming the variable and the spellings it takes.
public struct ConfigurationError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The variable.
    public let variable: String
    /// The part of its value that could not be read.
    public let value: String
    /// What it takes.
    public let expected: String

    public var description: String {
        "\(variable): \(HaulError.quoted(value, limit: 80)) is not \(expected)"
    }
}

/// The readers of host lists and addresses in the environment: one grammar
/// for every variable (`ConfiguredHost`), each refusing what it cannot read
/// with an error naming the variable.
public enum EnvironmentHosts {
    static let listSpellings = "a comma-separated list of host, host:port, http(s)://host[:port] or [IPv6]:port"

    /// The comma-separated hosts of `variable` (empty when unset or empty).
    public static func list(_ variable: String, _ environment: [String: String]) throws(ConfigurationError)
        -> [ConfiguredHost]
    {
        var hosts: [ConfiguredHost] = []
        for entry in (environment[variable] ?? "").split(separator: ",", omittingEmptySubsequences: false) {
            guard !entry.trimmingCharacters(in: .whitespaces).isEmpty else { continue }
            guard let host = ConfiguredHost(parsing: entry) else {
                throw ConfigurationError(
                    variable: variable, value: entry.trimmingCharacters(in: .whitespaces), expected: listSpellings)
            }
            hosts.append(host)
        }
        return hosts
    }

    /// As `list`, skipping entries it cannot read: for an embedder's
    /// values, which `haul serve` has checked with `list` first.
    public static func readable(_ value: String?) -> [ConfiguredHost] {
        (value ?? "").split(separator: ",").compactMap { ConfiguredHost(parsing: $0) }
    }

    /// An address to listen on: `host:port`, `[IPv6]:port`, `:port`
    /// (every interface) or a bare port (loopback), optionally after
    /// `http://`. A host without a port is refused: there is no port to
    /// take for it (`HAUL_METRICS_ADDR=127.0.0.1` silently took Ollama's
    /// 11434). Nil when unset or empty.
    public static func listenAddress(_ variable: String, _ environment: [String: String]) throws(ConfigurationError)
        -> OllamaHost?
    {
        guard let raw = environment[variable]?.trimmingCharacters(in: .whitespaces), !raw.isEmpty else { return nil }
        let refusal = ConfigurationError(
            variable: variable, value: raw, expected: "an address to listen on: host:port, [IPv6]:port, :port or a port"
        )
        if let port = WireNumber.parse(raw, in: 1...65535) {
            return OllamaHost(parsing: "127.0.0.1:\(port)")
        }
        var text = raw
        if text.lowercased().hasPrefix("http://") { text.removeFirst(7) }
        if text.hasPrefix(":"), let port = WireNumber.parse(text.dropFirst(), in: 1...65535) {
            return OllamaHost(parsing: ":\(port)")
        }
        guard let host = ConfiguredHost(parsing: text), host.scheme == nil, host.port != nil else { throw refusal }
        return OllamaHost(parsing: host.authority)
    }
}
