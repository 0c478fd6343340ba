#if canImport(Glibc)
import Glibc
#endif

/// Which addresses a connection may reach: Ollama's redirect hardening
/// (`x/transfer/redirect.go` `isPublicIP`, `checkedDialer`, `checkedClient`;
/// ollama/ollama#18512, #18533), as a value. A registry, or a page or a
/// neighbour asking a daemon to pull, must not be able to send Haul to
/// `169.254.169.254`, `localhost:<admin port>` or anything on the LAN.
///
/// The engine asks it for every connection it opens, with the address the
/// socket is about to connect to (curl's `CURLOPT_OPENSOCKETFUNCTION`):
/// the address checked is the address used, so DNS cannot answer one way
/// for a check and another for the connection.
struct AddressPolicy: Sendable, Equatable {
    /// Hosts whose addresses are not checked (lower case, no port): the
    /// registry itself, and hosts the operator listed.
    var exemptHosts: Set<String> = []
    /// Host suffixes exempt too (`.hf.co`: Hugging Face's CDN hosts).
    var exemptSuffixes: [String] = []
    /// No address checks at all (the CLI's `--insecure`, as Ollama's
    /// `AllowPrivateHosts`).
    var allowPrivate = false

    /// Checks nothing: for requests that are not a registry's (none today).
    static let unrestricted = AddressPolicy(allowPrivate: true)

    /// Nil when a connection to `host` at `address` is allowed; otherwise
    /// why not.
    func refusal(host: String, address: IPAddress) -> String? {
        if allowPrivate || isExempt(host) || Self.isPublic(address) { return nil }
        return "\(HaulError.quoted(host, limit: 80)) resolves to \(address), \(Self.describe(address)): refused "
            + Self.refusalReason
    }

    private static let refusalReason = "(only public addresses are reached for a registry's redirects)"

    /// Whether a failed request's error is this policy's refusal (which no
    /// retry can change) rather than a network failure.
    static func isRefusal(_ error: any Error) -> Bool {
        guard case .network(_, let message)? = error as? HaulError else { return false }
        return message.hasSuffix(refusalReason)
    }

    func isExempt(_ host: String) -> Bool {
        let h = Self.bare(host)
        return exemptHosts.contains(h) || exemptSuffixes.contains { h.hasSuffix($0) }
    }

    /// A host without brackets or port, lower-cased.
    static func bare(_ host: String) -> String {
        var h = host.lowercased()
        if h.hasPrefix("["), let close = h.firstIndex(of: "]") {
            return String(h[h.index(after: h.startIndex)..<close])
        }
        if h.filter({ $0 == ":" }).count == 1, let colon = h.firstIndex(of: ":") { h = String(h[..<colon]) }
        return h
    }

    /// Ollama's `isPublicIP`: global unicast, and none of the private
    /// (RFC 1918, RFC 4193), shared (100.64.0.0/10, carrier-grade NAT and
    /// some clouds' metadata) or benchmarking (198.18.0.0/15) ranges.
    /// IPv4-mapped IPv6 is judged as the IPv4 address it carries.
    static func isPublic(_ address: IPAddress) -> Bool {
        switch address.unmapped {
        case .v4(let a):
            let b0 = a >> 24
            let b1 = (a >> 16) & 0xFF
            if b0 == 0 || b0 == 127 || b0 == 10 { return false }  // this network, loopback, private
            if b0 >= 224 { return false }  // multicast, reserved, broadcast
            if b0 == 169 && b1 == 254 { return false }  // link-local (cloud metadata)
            if b0 == 172 && (16...31).contains(b1) { return false }  // private
            if b0 == 192 && b1 == 168 { return false }  // private
            if b0 == 100 && (64...127).contains(b1) { return false }  // shared address space
            if b0 == 198 && (b1 == 18 || b1 == 19) { return false }  // benchmarking
            return true
        case .v6(let bytes):
            if bytes.allSatisfy({ $0 == 0 }) { return false }  // unspecified
            if bytes[0..<15].allSatisfy({ $0 == 0 }) && bytes[15] == 1 { return false }  // loopback
            if bytes[0] == 0xFF { return false }  // multicast
            if bytes[0] == 0xFE && (bytes[1] & 0xC0) == 0x80 { return false }  // link-local
            if (bytes[0] & 0xFE) == 0xFC { return false }  // unique local
            return (bytes[0] & 0xE0) == 0x20  // global unicast 2000::/3
        }
    }

    static func describe(_ address: IPAddress) -> String {
        switch address.unmapped {
        case .v4(let a):
            let b0 = a >> 24
            let b1 = (a >> 16) & 0xFF
            if b0 == 127 { return "a loopback address" }
            if b0 == 169 && b1 == 254 { return "a link-local address" }
            if b0 == 100 && (64...127).contains(b1) { return "a shared (carrier-grade NAT) address" }
            return "a private or reserved address"
        case .v6(let bytes):
            if bytes[0..<15].allSatisfy({ $0 == 0 }) && bytes[15] == 1 { return "a loopback address" }
            if bytes[0] == 0xFE && (bytes[1] & 0xC0) == 0x80 { return "a link-local address" }
            return "a private or reserved address"
        }
    }
}

/// An IP address as a socket sees it.
enum IPAddress: Sendable, Equatable, CustomStringConvertible {
    case v4(UInt32)
    case v6([UInt8])

    /// From text (`10.0.0.1`, `::1`); nil if it is not an address.
    init?(_ text: String) {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            self = .v4(UInt32(bigEndian: v4.s_addr))
            return
        }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, text, &v6) == 1 else { return nil }
        self = .v6(withUnsafeBytes(of: &v6) { Array($0) })
    }

    /// From a socket address curl is about to connect to.
    init?(_ address: UnsafePointer<sockaddr>, length: Int) {
        switch Int32(address.pointee.sa_family) {
        case AF_INET where length >= MemoryLayout<sockaddr_in>.size:
            let a = address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr.s_addr }
            self = .v4(UInt32(bigEndian: a))
        case AF_INET6 where length >= MemoryLayout<sockaddr_in6>.size:
            var a = address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee.sin6_addr }
            self = .v6(withUnsafeBytes(of: &a) { Array($0) })
        default:
            return nil
        }
    }

    /// An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) as its IPv4 address.
    var unmapped: IPAddress {
        if case .v6(let b) = self, b[0..<10].allSatisfy({ $0 == 0 }), b[10] == 0xFF, b[11] == 0xFF {
            return .v4(UInt32(b[12]) << 24 | UInt32(b[13]) << 16 | UInt32(b[14]) << 8 | UInt32(b[15]))
        }
        return self
    }

    var description: String {
        switch self {
        case .v4(let a): return "\(a >> 24).\((a >> 16) & 0xFF).\((a >> 8) & 0xFF).\(a & 0xFF)"
        case .v6(var bytes):
            var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
            return bytes.withUnsafeMutableBytes { raw in
                inet_ntop(AF_INET6, raw.baseAddress, &buffer, socklen_t(buffer.count)) != nil
                    ? String(cString: buffer) : "?"
            }
        }
    }
}
