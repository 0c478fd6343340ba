/// The distribution API's write side, for pushes: requests to the registry
/// itself, with its credentials, and the URLs of upload sessions.
extension RegistryClient {
    /// `request` sent to the registry with its headers (credentials
    /// included); a 401 is answered once with the challenge's scope
    /// (`repository:<name>:pull,push` for an upload), as a pull answers it.
    func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        var request = request
        let extra = request.headers
        let sent = authorizer.authorization
        request.headers = host.headers + (sent.map { ["Authorization: \($0)"] } ?? []) + extra
        request.tls = tls
        var response = try await engine.fetch(request)
        if response.status == 401 {
            let value = try await authorizer.authorize(
                challengeHeader: response.headers["www-authenticate"], sent: sent)
            request.headers = host.headers + ["Authorization: \(value)"] + extra
            response = try await engine.fetch(request)
            if response.status == 401 { throw HaulError.unauthorized(authorizer.refusal) }
        }
        return response
    }

    /// A request to the registry, bounded like every in-memory answer.
    func request(
        _ url: String, method: String? = nil, body: HTTPRequest.Body? = nil, headers: [String] = [],
        head: Bool = false
    ) -> HTTPRequest {
        HTTPRequest(
            url: url, method: method, body: body, headers: headers, limit: 1 << 20, head: head,
            addressPolicy: addressPolicy)
    }

    /// Where a new upload session is opened.
    var uploadsURL: String { "\(host.root)/\(name.repository)/blobs/uploads/" }

    /// An upload session's `Location` made absolute. The session must stay
    /// on the registry itself: its credentials go with every request to
    /// it, so a `Location` on another host or scheme is refused (nil).
    func sessionURL(_ location: String?) -> String? { Self.sessionURL(location, origin: host.origin) }

    /// `location` made absolute against `origin` (`scheme://host[:port]`),
    /// or nil when it leads anywhere else.
    static func sessionURL(_ location: String?, origin: String) -> String? {
        guard let location, !location.isEmpty else { return nil }
        if location.hasPrefix("/") && !location.hasPrefix("//") { return origin + location }
        guard let target = URLParts(location), let base = URLParts(origin), target.sameOrigin(base) else { return nil }
        return location
    }
}
