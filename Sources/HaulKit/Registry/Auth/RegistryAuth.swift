import Foundation

/// Everything a `Haul` authenticates to registries with: where credentials
/// come from, the Ollama key's path, Hugging Face's token (and the mirror
/// that token may go to), and the token cache its pulls share.
///
/// `RegistryAuth()` is anonymous: no credentials, no key, no token.
/// `fromEnvironment()` is what the CLI and the daemon use.
public struct RegistryAuth: Sendable {
    /// Where per-registry credentials come from.
    public var credentials: CredentialSource
    /// The Ollama key that signs token requests to a registry's own realm;
    /// nil never signs.
    public var ollamaKeyPath: String?
    /// Hugging Face's token and mirror.
    public var huggingFace: HuggingFace
    let tokens = TokenCache()

    /// Authentication from explicit values; anonymous by default.
    public init(
        credentials: CredentialSource = CredentialSource(), ollamaKeyPath: String? = nil,
        huggingFace: HuggingFace = HuggingFace()
    ) {
        self.credentials = credentials
        self.ollamaKeyPath = ollamaKeyPath
        self.huggingFace = huggingFace
    }

    /// Whether pushing `name` could send something of the operator's: the
    /// credentials held for its registry; for Ollama's public registry, a
    /// signature by the Ollama key (which names its owner); for Hugging
    /// Face or its `HF_ENDPOINT`, the HF token. Hosts are compared without
    /// port, case or a trailing dot, so `ollama.com:443` is the public
    /// registry too (its realm is its own, and the key would sign).
    public func holdsCredentials(for name: ModelName) -> Bool {
        if credentials.credentials(for: name.host) != nil { return true }
        let host = Self.bareHost(name.host)
        if ModelName.publicHosts.contains(host), let key = ollamaKeyPath, FileSystem.exists(key) { return true }
        if huggingFace.token != nil {
            if HuggingFace.hosts.contains(host) { return true }
            // The endpoint gets the token only at its own origin: its host
            // and port (a name without a port may mean either default).
            if let endpoint = huggingFace.endpoint.flatMap(URLParts.init), Self.bareHost(endpoint.host) == host {
                let port = ConfiguredHost(parsing: name.host)?.port
                if port == endpoint.port || (port == nil && [80, 443].contains(endpoint.port)) { return true }
            }
        }
        return false
    }

    /// A host without brackets, port or trailing dot, lower-cased.
    static func bareHost(_ host: String) -> String {
        var h = AddressPolicy.bare(host)
        while h.hasSuffix(".") { h.removeLast() }
        return h
    }

    /// `HAUL_REGISTRY_AUTH` and docker's config (`DOCKER_CONFIG`, else
    /// `~/.docker/config.json`), `~/.ollama/id_ed25519`, and Hugging Face's
    /// `HF_TOKEN`/token file and `HF_ENDPOINT`: as `ollama` and `haul` read them.
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment)
        -> RegistryAuth
    {
        RegistryAuth(
            credentials: .fromEnvironment(environment), ollamaKeyPath: OllamaKey.defaultPath(environment),
            huggingFace: .fromEnvironment(environment))
    }
}
