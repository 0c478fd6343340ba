import Foundation

/// Talks to an Ollama-style (Docker Registry v2) registry for one model:
/// fetches its manifest and builds blob URLs.
struct RegistryClient: Sendable {
    static let manifestAccept = "Accept: " + Manifest.mediaTypes.joined(separator: ", ")

    let engine: Engine
    let name: ModelName
    let insecure: Bool
    let authorizer: RegistryAuthorizer

    init(engine: Engine, name: ModelName, insecure: Bool, auth: RegistryAuth) {
        self.engine = engine
        self.name = name
        self.insecure = insecure
        authorizer = RegistryAuthorizer(engine: engine, tokens: auth.tokens,
                                        credentials: auth.credentials.credentials(for: name.host),
                                        ollamaKeyPath: auth.ollamaKeyPath,
                                        registry: Self.baseURL(for: name, insecure: insecure), repository: name.repository)
    }

    /// `--insecure` means plain HTTP, as in Ollama; TLS is never weakened.
    var baseURL: String { Self.baseURL(for: name, insecure: insecure) }

    static func baseURL(for name: ModelName, insecure: Bool) -> String {
        "\(insecure ? "http" : (name.scheme ?? "https"))://\(name.host)"
    }

    var manifestURL: String { "\(baseURL)/v2/\(name.repository)/manifests/\(name.tag)" }

    func blobURL(_ digest: Digest) -> String { "\(baseURL)/v2/\(name.repository)/blobs/\(digest)" }

    /// Headers for requests to the registry host itself (never a CDN).
    var registryHeaders: [String] { authorizer.authorization.map { ["Authorization: \($0)"] } ?? [] }

    func fetchManifest() async throws -> Manifest {
        if name.scheme == "http" && !insecure {
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

    private func getManifest() async throws -> HTTPResponse {
        do {
            return try await engine.fetch(HTTPRequest(url: manifestURL, headers: registryHeaders + [Self.manifestAccept],
                                                      followRedirects: true, limit: Manifest.maxBytes, insecure: insecure))
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
