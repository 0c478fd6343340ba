internal import CShims

#if canImport(Glibc)
import Glibc
#endif

/// Holds one transfer's connections to its `AddressPolicy`. curl asks it
/// for every socket it opens (`CURLOPT_OPENSOCKETFUNCTION`), with the
/// address it is about to connect to, and for the host of the URL being
/// requested at that moment (a redirect curl follows included). A refused
/// address gets no socket, so not one packet reaches it, and DNS cannot
/// answer differently for the check and for the connection: the address
/// checked is the address used.
///
/// Confined to the loop thread with its `Transfer`, which keeps it alive
/// for as long as the easy handle exists.
final class ConnectionGuard {
    let policy: AddressPolicy
    /// The transfer's proxy: connections to it are the operator's choice,
    /// and the proxy, not Haul, reaches the host. Only those are exempt;
    /// a direct connection (a host `NO_PROXY` matches) is judged as any.
    let proxy: ProxyEndpoint?
    /// The handle whose current URL names the host connected to.
    var easy: OpaquePointer?
    /// Why a connection was refused, for the transfer's error.
    private(set) var refusal: String?

    init(policy: AddressPolicy, proxy: ProxyEndpoint?) {
        self.policy = policy
        self.proxy = proxy
    }

    /// The curl callback: a socket, or `CURL_SOCKET_BAD` (-1) for an
    /// address the policy refuses.
    func open(_ purpose: curlsocktype, _ address: UnsafeMutablePointer<curl_sockaddr>) -> curl_socket_t {
        if purpose == CURLSOCKTYPE_IPCXN && !policy.allowPrivate {
            let length = Int(address.pointee.addrlen)
            let raw = UnsafeRawPointer(address) + MemoryLayout<curl_sockaddr>.offset(of: \curl_sockaddr.addr)!
            let socketAddress = raw.assumingMemoryBound(to: sockaddr.self)
            let ip = IPAddress(socketAddress, length: length)
            let toProxy = ip.map { proxy?.isEndpoint($0, port: Self.port(socketAddress)) == true } ?? false
            let host = currentHost()
            if !toProxy && !policy.isExempt(host) {
                guard let ip else {
                    refusal = "\(HaulError.quoted(host, limit: 80)): an address of an unknown family: refused"
                    return -1
                }
                if let why = policy.refusal(host: host, address: ip) {
                    refusal = why
                    return -1
                }
            }
        }
        return socket(address.pointee.family, address.pointee.socktype, address.pointee.protocol)
    }

    /// The port of an IPv4 or IPv6 socket address (0 for another family).
    private static func port(_ address: UnsafePointer<sockaddr>) -> Int {
        switch Int32(address.pointee.sa_family) {
        case AF_INET:
            return Int(
                UInt16(bigEndian: address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_port }))
        case AF_INET6:
            return Int(
                UInt16(
                    bigEndian: address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee.sin6_port }))
        default:
            return 0
        }
    }

    /// The host of the URL curl is requesting now.
    private func currentHost() -> String {
        var p: UnsafePointer<CChar>?
        guard let easy, hl_easy_getinfo_str(easy, CURLINFO_EFFECTIVE_URL, &p) == CURLE_OK, let p,
            let host = URLParts(String(cString: p))?.host
        else { return "" }
        return host
    }

    /// The C function curl calls; `data` is the guard, unretained.
    static let callback:
        @convention(c) (UnsafeMutableRawPointer?, curlsocktype, UnsafeMutablePointer<curl_sockaddr>?) -> curl_socket_t =
            {
                data, purpose, address in
                guard let data, let address else { return -1 }
                return Unmanaged<ConnectionGuard>.fromOpaque(data).takeUnretainedValue().open(purpose, address)
            }
}
