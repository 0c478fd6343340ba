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
    /// Connections go to a proxy: its address is the operator's choice,
    /// and the proxy, not Haul, reaches the host.
    let proxied: Bool
    /// The handle whose current URL names the host connected to.
    var easy: OpaquePointer?
    /// Why a connection was refused, for the transfer's error.
    private(set) var refusal: String?

    init(policy: AddressPolicy, proxied: Bool) {
        self.policy = policy
        self.proxied = proxied
    }

    /// The curl callback: a socket, or `CURL_SOCKET_BAD` (-1) for an
    /// address the policy refuses.
    func open(_ purpose: curlsocktype, _ address: UnsafeMutablePointer<curl_sockaddr>) -> curl_socket_t {
        if purpose == CURLSOCKTYPE_IPCXN && !proxied && !policy.allowPrivate {
            let host = currentHost()
            if !policy.isExempt(host) {
                let length = Int(address.pointee.addrlen)
                let raw = UnsafeRawPointer(address) + MemoryLayout<curl_sockaddr>.offset(of: \curl_sockaddr.addr)!
                let ip = IPAddress(raw.assumingMemoryBound(to: sockaddr.self), length: length)
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
