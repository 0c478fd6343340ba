import Foundation

/// Talks to one host serving a model (the registry itself, or a mirror of
/// it) over the Docker Registry v2 API: fetches the manifest and builds blob
/// URLs. Each host answers its own challenges with its own credentials; a
/// token or password for one is never sent to another.
struct RegistryClient: Sendable {
    static let manifestAccept = "Accept: " + Manifest.mediaTypes.joined(separator: ", ")

    let engine: Engine
    let name: ModelName
    let host: RegistryHost
    /// Plain HTTP allowed, and redirects from https to http: for the
    /// registry, the user's `--insecure` (Ollama's meaning); for a mirror,
    /// whether its configured URL is http.
    let insecure: Bool
    let authorizer: RegistryAuthorizer

    init(engine: Engine, name: ModelName, host: RegistryHost, insecure: Bool, auth: RegistryAuth) {
        self.engine = engine
        self.name = name
        self.host = host
        self.insecure = host.isMirror ? host.origin.lowercased().hasPrefix("http:") : insecure
        authorizer = RegistryAuthorizer(engine: engine, tokens: auth.tokens,
                                        credentials: auth.credentials.credentials(for: host.authority),
                                        ollamaKeyPath: auth.ollamaKeyPath, huggingFace: auth.huggingFace,
                                        registry: host.origin, repository: name.repository)
    }

    /// The registry itself, at the name's host (`--insecure` means plain
    /// HTTP, as in Ollama; TLS is never weakened).
    init(engine: Engine, name: ModelName, insecure: Bool, auth: RegistryAuth) {
        self.init(engine: engine, name: name, host: .upstream(name, insecure: insecure), insecure: insecure, auth: auth)
    }

    var tls: HostTLS? { host.caFile != nil || host.skipVerify ? HostTLS(caFile: host.caFile, skipVerify: host.skipVerify) : nil }

    var manifestURL: String { host.manifestURL(name) }

    func blobURL(_ digest: Digest) -> String { host.blobURL(name, digest) }

    /// Headers for requests to this host itself (never a CDN it redirects to).
    var registryHeaders: [String] { host.headers + (authorizer.authorization.map { ["Authorization: \($0)"] } ?? []) }

    func fetchManifest() async throws -> Manifest {
        if !host.isMirror && name.scheme == "http" && !insecure {
            throw HaulError.manifestUnreachable(url: manifestURL, message: "insecure protocol http")
        }
        var response = try await getManifest()
        if response.status == 401 {
            // Ollama answers a 401 once (`server/images.go` `makeRequestWithRetry`); so does Haul.
            try await authorizer.authorize(challengeHeader: response.headers["www-authenticate"])
            response = try await getManifest()
        }
        switch response.status {
        case 200:
            return try Manifest(bytes: response.body)
        case 404:
            throw HaulError.manifestNotFound
        case 401:
            throw HaulError.unauthorized(authorizer.refusal)
        default:
            throw HaulError.manifestStatus(response.status, body: Self.errorText(response.body))
        }
    }

    /// The digest the registry gives the tag now, by HEAD (its
    /// `Docker-Content-Digest`) when it says, else from the manifest itself.
    /// A claim to compare with, not to trust: a pull verifies what it gets.
    func manifestDigest() async throws -> Digest {
        if name.scheme == "http" && !insecure && !host.isMirror {
            throw HaulError.manifestUnreachable(url: manifestURL, message: "insecure protocol http")
        }
        var response = try await getManifest(head: true)
        if response.status == 401 {
            try await authorizer.authorize(challengeHeader: response.headers["www-authenticate"])
            response = try await getManifest(head: true)
        }
        if response.status == 200, let text = response.headers["docker-content-digest"], let digest = try? Digest(parsing: text) {
            return digest
        }
        return try await fetchManifest().digest
    }

    private func getManifest(head: Bool = false) async throws -> HTTPResponse {
        do {
            return try await engine.fetch(HTTPRequest(url: manifestURL, headers: registryHeaders + [Self.manifestAccept],
                                                      followRedirects: true, limit: Manifest.maxBytes, insecure: insecure,
                                                      tls: tls, head: head))
        } catch let HaulError.network(url, message) {
            throw HaulError.manifestUnreachable(url: url, message: message)
        }
    }

    /// A blob request was refused mid-pull (a token expired): answer the
    /// new challenge, so the next attempt carries a fresh token.
    func reauthorize(challenge: String?) async throws {
        try await authorizer.authorize(challengeHeader: challenge)
    }

    /// A registry error body, trimmed for a message: the `message` of an OCI
    /// error document when there is one, else the text itself.
    static func errorText(_ body: [UInt8]) -> String {
        struct Document: Decodable {
            struct Entry: Decodable { var message: String? }
            var errors: [Entry]?
        }
        let head = Array(body.prefix(16 << 10))
        if let message = (try? JSONDecoder().decode(Document.self, from: Data(head)))?.errors?.first?.message {
            return HaulError.quoted(message, limit: 300)
        }
        let text = String(decoding: head.prefix(2048), as: UTF8.self)
        return HaulError.quoted(text.trimmingCharacters(in: .whitespacesAndNewlines), limit: 300)
    }
}
