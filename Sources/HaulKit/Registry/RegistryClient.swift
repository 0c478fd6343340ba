import Foundation

/// Talks to one host serving a model (the registry itself, or a mirror of
/// it) over the Docker Registry v2 API: fetches the manifest and builds blob
/// URLs. Each host answers its own challenges with its own credentials; a
/// token or password for one is never sent to another.
struct RegistryClient: Sendable {
    /// The list type first, as Ollama ≥ 0.40 asks (`server/images.go`
    /// `pullModelManifest`), then the manifest types Haul reads.
    static let manifestAccept = "Accept: " + ([ManifestList.mediaType] + Manifest.mediaTypes).joined(separator: ", ")

    let engine: Engine
    let name: ModelName
    let host: RegistryHost
    /// The user's `--insecure`: a registry named `http://…` may be used
    /// (Ollama's meaning). It never lets an https exchange continue over
    /// http (see `SourceResolver.redirect`).
    let insecure: Bool
    let authorizer: RegistryAuthorizer
    /// Which addresses this host's requests, and every host they lead to,
    /// may reach.
    let addressPolicy: AddressPolicy

    init(engine: Engine, name: ModelName, host: RegistryHost, insecure: Bool, auth: RegistryAuth) {
        self.engine = engine
        self.name = name
        self.host = host
        self.insecure = insecure
        let policy = Self.addressPolicy(for: host, userInsecure: insecure, rule: engine.configuration.privateAddresses)
        addressPolicy = policy
        authorizer = RegistryAuthorizer(
            engine: engine, tokens: auth.tokens,
            credentials: auth.credentials.credentials(for: host.authority),
            ollamaKeyPath: auth.ollamaKeyPath, huggingFace: auth.huggingFace,
            registry: host.origin, repository: name.repository, addressPolicy: policy)
    }

    /// Ollama's rule (`x/transfer/redirect.go` `checkedClient`): the
    /// registry's own host is exempt (any port), and so are Hugging Face's
    /// own hosts when the registry is HF's (`hf.co` → `huggingface.co` →
    /// `*.hf.co`, ollama/ollama#18533); the user's `insecure` turns the
    /// check off. A daemon exempts only what its operator listed, and the
    /// mirrors of its hosts.toml; its clients' `insecure` changes nothing.
    static func addressPolicy(for host: RegistryHost, userInsecure: Bool, rule: PrivateAddresses) -> AddressPolicy {
        var policy = AddressPolicy()
        let own = AddressPolicy.bare(URLParts(host.origin)?.host ?? host.authority)
        if host.isMirror { policy.exemptHosts.insert(own) }
        switch rule {
        case .registryHost:
            policy.exemptHosts.insert(own)
            if HuggingFace.hosts.contains(own) {
                policy.exemptHosts.formUnion(HuggingFace.hosts)
                policy.exemptSuffixes = HuggingFace.hosts.map { "." + $0 }.sorted()
            }
            policy.allowPrivate = userInsecure && !host.isMirror
        case .onlyListed(let hosts):
            policy.exemptHosts.formUnion(hosts)
        }
        return policy
    }

    /// The registry itself, at the name's host (`--insecure` means plain
    /// HTTP, as in Ollama; TLS is never weakened).
    init(engine: Engine, name: ModelName, insecure: Bool, auth: RegistryAuth) {
        self.init(engine: engine, name: name, host: .upstream(name, insecure: insecure), insecure: insecure, auth: auth)
    }

    var tls: HostTLS? {
        host.caFile != nil || host.skipVerify ? HostTLS(caFile: host.caFile, skipVerify: host.skipVerify) : nil
    }

    var manifestURL: String { host.manifestURL(name) }

    func blobURL(_ digest: Digest) -> String { host.blobURL(name, digest) }

    /// Headers for requests to this host itself (never a CDN it redirects to).
    var registryHeaders: [String] { host.headers + (authorizer.authorization.map { ["Authorization: \($0)"] } ?? []) }

    /// The tag's manifest, or its manifest list: told apart by the body's
    /// `mediaType`, as Ollama tells them apart, never by `Content-Type`.
    func fetchManifest() async throws -> FetchedManifest {
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
            if ManifestList.isList(response.body) { return .list(try ManifestList(bytes: response.body)) }
            return .image(try Manifest(bytes: response.body))
        case 404:
            throw HaulError.manifestNotFound
        case 401:
            throw HaulError.unauthorized(authorizer.refusal)
        case 412:
            // Ollama's registry gates models on the client version in the
            // User-Agent.
            throw HaulError.clientVersionRefused(claimed: claimedVersion, message: Self.errorText(response.body))
        default:
            throw HaulError.manifestStatus(response.status, body: Self.errorText(response.body))
        }
    }

    /// The Ollama version the User-Agent claims (`ollama/<version> …`).
    private var claimedVersion: String {
        let agent = engine.configuration.userAgent
        guard agent.hasPrefix("ollama/") else { return Versions.ollamaAPI }
        return String(agent.dropFirst("ollama/".count).prefix { $0 != " " })
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
        if response.status == 200, let text = response.headers["docker-content-digest"],
            let digest = try? Digest(parsing: text)
        {
            return digest
        }
        return try await fetchManifest().digest
    }

    /// A blob's size by `HEAD`, as Ollama learns a list child's
    /// (`remoteBlobLayer`): a `Content-Length` is required. Nil when the
    /// registry does not have it.
    func blobSize(_ digest: Digest) async throws -> Int64? {
        func head() async throws -> HTTPResponse {
            do {
                return try await engine.fetch(
                    HTTPRequest(
                        url: blobURL(digest), headers: registryHeaders, followRedirects: true,
                        limit: 0, tls: tls, head: true,
                        addressPolicy: addressPolicy))
            } catch let HaulError.network(url, message) {
                throw HaulError.manifestUnreachable(url: url, message: message)
            }
        }
        var response = try await head()
        if response.status == 401 {
            try await authorizer.authorize(challengeHeader: response.headers["www-authenticate"])
            response = try await head()
        }
        switch response.status {
        case 200:
            guard let text = response.headers["content-length"],
                let size = Int64(text.trimmingCharacters(in: .whitespaces)),
                size >= 0
            else {
                throw HaulError.manifestInvalid("the registry's HEAD of manifest \(digest) has no Content-Length")
            }
            return size
        case 404: return nil
        case 401: throw HaulError.unauthorized(authorizer.refusal)
        default: throw HaulError.manifestStatus(response.status, body: "")
        }
    }

    private func getManifest(head: Bool = false) async throws -> HTTPResponse {
        do {
            return try await engine.fetch(
                HTTPRequest(
                    url: manifestURL, headers: registryHeaders + [Self.manifestAccept],
                    followRedirects: true, limit: Manifest.maxBytes,
                    tls: tls, head: head, addressPolicy: addressPolicy))
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

/// What a tag's manifest request returned.
enum FetchedManifest: Sendable {
    /// A runnable manifest.
    case image(Manifest)
    /// A manifest list: a child per runner, each fetched as a blob.
    case list(ManifestList)

    /// The bytes as received.
    var raw: [UInt8] {
        switch self {
        case .image(let manifest): return manifest.raw
        case .list(let list): return list.raw
        }
    }

    /// The tag's digest: SHA-256 of the bytes.
    var digest: Digest { Digest(hashing: raw) }
}
