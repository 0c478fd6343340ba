import Foundation
import Synchronization

/// Answers a registry's 401 for one pull: reads its challenge and produces
/// the `Authorization` value for the registry's requests.
///
/// - `Basic`: the registry's credentials, if any were given.
/// - `Bearer`: a token from the challenge's realm, by the flow that fits:
///   with credentials, the OCI/Docker token flow with Basic auth; without,
///   for Hugging Face, `HF_TOKEN` as a Bearer token; then Ollama's signed
///   flow when `~/.ollama/id_ed25519` exists and the realm is the
///   registry's own (Ollama's host pinning, with HF's two hosts as one:
///   see `HuggingFace`), else an anonymous token request. A token minted
///   with a secret goes back to the registry that asked, so a realm on
///   another party's host never gets a secret, only an anonymous request.
///
/// The value is only ever attached to requests to the registry itself;
/// CDN requests never carry it.
final class RegistryAuthorizer: Sendable {
    let engine: Engine
    let tokens: TokenCache
    let credentials: RegistryCredentials?
    let ollamaKeyPath: String?
    let huggingFace: HuggingFace
    /// The registry's base URL (`scheme://host[:port]`) and repository.
    let registry: String
    let repository: String
    /// Which addresses token requests may reach (the realm is often
    /// another host than the registry).
    let addressPolicy: AddressPolicy
    private let current = Mutex<String?>(nil)

    init(
        engine: Engine, tokens: TokenCache, credentials: RegistryCredentials?, ollamaKeyPath: String?,
        huggingFace: HuggingFace = HuggingFace(), registry: String, repository: String, addressPolicy: AddressPolicy
    ) {
        self.addressPolicy = addressPolicy
        self.engine = engine
        self.tokens = tokens
        self.credentials = credentials
        self.ollamaKeyPath = ollamaKeyPath
        self.huggingFace = huggingFace
        self.registry = registry
        self.repository = repository
    }

    /// The `Authorization` value registry requests carry now, if any.
    var authorization: String? { current.withLock { $0 } }

    /// After a 401 carrying `challengeHeader`: a new `Authorization` value,
    /// or an error saying what the user can do. A value that was already
    /// refused is not offered again.
    @discardableResult
    func authorize(challengeHeader: String?) async throws -> String {
        try await authorize(challengeHeader: challengeHeader, sent: authorization)
    }

    /// The same, for a request that carried `sent` (nil: none). Requests
    /// run in parallel (a push's blobs): one that went out before another
    /// got the value must not take that value for a refused one.
    @discardableResult
    func authorize(challengeHeader: String?, sent: String?) async throws -> String {
        let rejected = sent
        let challenges = AuthChallenge.parse(challengeHeader ?? "")
        let value: String
        if let bearer = challenges.first(where: { $0.scheme == "bearer" }) {
            value = try await bearerAuthorization(bearer, rejected: rejected)
        } else if challenges.contains(where: { $0.scheme == "basic" }) {
            guard let credentials else { throw HaulError.unauthorized(Self.credentialsHint) }
            value = credentials.basicAuthorization
        } else {
            throw HaulError.unauthorized(
                "the registry asks for authentication Haul does not support: "
                    + HaulError.quoted(challengeHeader ?? "(no WWW-Authenticate header)"))
        }
        if value == rejected { throw HaulError.unauthorized(refusal) }
        current.withLock { $0 = value }
        return value
    }

    /// What to tell the user when the registry still says 401.
    var refusal: String {
        if let credentials { return "access denied for user \(HaulError.quoted(credentials.username))" }
        return authorization == nil ? Self.credentialsHint : "access denied"
    }

    static let credentialsHint =
        "authentication required: give credentials with --username and --password-stdin, "
        + "HAUL_REGISTRY_AUTH=HOST=USER:PASSWORD, or docker login"

    private func bearerAuthorization(_ challenge: AuthChallenge, rejected: String?) async throws -> String {
        guard let realm = challenge["realm"], let realmParts = URLParts(realm) else {
            throw HaulError.unauthorized("the registry's token realm is missing or not an http(s) URL")
        }
        guard let registryParts = URLParts(registry) else {
            throw HaulError.unauthorized("bad registry URL \(registry)")
        }
        let sameHost = realmParts.host == registryParts.host && realmParts.port == registryParts.port
        // A secret is not sent in clear text to a host the user did not
        // name: an http realm is only used on the registry's own host.
        if realmParts.scheme == "http" && !(sameHost && registryParts.scheme == "http") {
            throw HaulError.unauthorized("the registry's token realm \(HaulError.quoted(realm)) is not HTTPS")
        }
        let huggingFaceRealm = huggingFace.includes(registry) && huggingFace.includes(realm)
        let hfAuthorization = huggingFaceRealm && credentials == nil ? try huggingFace.tokenAuthorization() : nil
        let service = challenge["service"] ?? ""
        let scope = challenge["scope"] ?? "repository:\(repository):pull"
        // HF's hosts share their tokens, as they share the realm.
        let origin =
            huggingFaceRealm ? "huggingface" : "\(registryParts.scheme)://\(registryParts.host):\(registryParts.port)"
        let identity = credentials?.identity ?? (hfAuthorization == nil ? "anonymous" : "HF_TOKEN")
        let key = TokenCache.Key(registry: origin, identity: identity, realm: realm, service: service, scope: scope)
        let rejectedToken = rejected.flatMap { $0.hasPrefix("Bearer ") ? String($0.dropFirst(7)) : nil }
        let token = try await tokens.token(for: key, rejected: rejectedToken) { [self] in
            try await fetchToken(
                realm: realm, service: service, scope: scope, ownRealm: sameHost || huggingFaceRealm,
                hfAuthorization: hfAuthorization)
        }
        return "Bearer " + token
    }

    /// `ownRealm`: the realm is the registry's own, so Ollama's key may sign
    /// for it. `hfAuthorization`: HF_TOKEN, for a realm of Hugging Face's.
    private func fetchToken(
        realm: String, service: String, scope: String, ownRealm: Bool,
        hfAuthorization: String?
    ) async throws -> TokenCache.Token {
        let url = Self.tokenURL(realm: realm, service: service, scope: scope)
        if let credentials {
            return try await requestToken(url: url, authorization: credentials.basicAuthorization)
        }
        if let hfAuthorization {
            do {
                return try await requestToken(url: url, authorization: hfAuthorization)
            } catch HaulError.unauthorized(let why) {
                throw HaulError.unauthorized(
                    "Hugging Face refused HF_TOKEN (\(why)): check the token, or unset HF_TOKEN "
                        + "for public models")
            }
        }
        if ownRealm, let path = ollamaKeyPath, let key = try OllamaKey.load(path: path) {
            let url = Self.ollamaTokenURL(realm: realm, service: service, scope: scope)
            do {
                return try await requestToken(url: url, authorization: try key.authorization(forTokenURL: url))
            } catch HaulError.unauthorized {
                // Not an Ollama registry after all: try as everyone else.
            }
        }
        return try await requestToken(url: url, authorization: nil)
    }

    private func requestToken(url: String, authorization: String?) async throws -> TokenCache.Token {
        let response = try await engine.fetch(
            HTTPRequest(
                url: url, headers: authorization.map { ["Authorization: \($0)"] } ?? [],
                followRedirects: true, limit: 256 << 10, addressPolicy: addressPolicy))
        switch response.status {
        case 200:
            break
        case 401, 403:
            throw HaulError.unauthorized(
                "the token server refused: \(response.status): \(RegistryClient.errorText(response.body))")
        default:
            throw HaulError.unauthorized(
                "token request failed: \(response.status): \(RegistryClient.errorText(response.body))")
        }
        struct Reply: Decodable {
            var token: String?
            var access_token: String?
            var expires_in: Double?
        }
        guard let reply = try? JSONDecoder().decode(Reply.self, from: Data(response.body)),
            let token = reply.token ?? reply.access_token, !token.isEmpty,
            token.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F })
        else {
            throw HaulError.unauthorized("the token server's answer has no usable token")
        }
        // Docker's spec: 60 s when unstated. Renewed a little early, so a
        // request does not leave with a token about to lapse.
        let lifetime = max(0, reply.expires_in ?? 60)
        return TokenCache.Token(value: token, expires: Date().timeIntervalSince1970 + lifetime * 0.9)
    }

    /// `realm?service=…&scope=…` (one `scope` per space-separated scope).
    static func tokenURL(realm: String, service: String, scope: String) -> String {
        var query: [String] = []
        if !service.isEmpty { query.append("service=" + queryEscape(service)) }
        for s in scope.split(separator: " ") { query.append("scope=" + queryEscape(String(s))) }
        return realm + (realm.contains("?") ? "&" : "?") + query.joined(separator: "&")
    }

    /// Ollama's token URL (Ollama's `server/auth.go` `getAuthorizationToken`): the realm's query plus
    /// `service`, each `scope`, `ts` and a random `nonce`, keys sorted as
    /// Go's `url.Values.Encode` sorts them, since the URL is what is signed.
    static func ollamaTokenURL(
        realm: String, service: String, scope: String,
        now: Date = Date(), nonce: [UInt8] = (0..<16).map { _ in UInt8.random(in: 0...255) }
    ) -> String {
        var base = realm
        var values: [(String, String)] = []
        if let q = realm.firstIndex(of: "?") {
            base = String(realm[..<q])
            for pair in realm[realm.index(after: q)...].split(separator: "&") {
                let kv = pair.split(separator: "=", maxSplits: 1)
                let k = String(kv[0]).removingPercentEncoding ?? String(kv[0])
                let v =
                    kv.count > 1
                    ? (String(kv[1]).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? "") : ""
                values.append((k, v))
            }
        }
        values.append(("service", service))
        for s in scope.split(separator: " ") { values.append(("scope", String(s))) }
        values.append(("ts", String(Int(now.timeIntervalSince1970))))
        let nonceText = Data(nonce).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
        values.append(("nonce", nonceText))
        // Stable sort by key keeps the order of repeated keys, as Go does.
        let sorted = values.enumerated().sorted { ($0.element.0, $0.offset) < ($1.element.0, $1.offset) }.map(\.element)
        return base + "?" + sorted.map { queryEscape($0.0) + "=" + queryEscape($0.1) }.joined(separator: "&")
    }

    /// Go's `url.QueryEscape`: unreserved bytes as is, space as `+`, the
    /// rest percent-encoded in upper case.
    static func queryEscape(_ text: String) -> String {
        var out = ""
        for b in text.utf8 {
            switch b {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."),
                UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(b))
            case UInt8(ascii: " "):
                out += "+"
            default:
                out += "%" + String(b, radix: 16, uppercase: true).leftPadded(to: 2)
            }
        }
        return out
    }
}

extension String {
    fileprivate func leftPadded(to n: Int) -> String {
        count >= n ? self : String(repeating: "0", count: n - count) + self
    }
}
