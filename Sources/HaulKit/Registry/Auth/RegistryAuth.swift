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

    /// Whether pushing `name` would send something of the operator's: the
    /// credentials held for its registry, or, for Ollama's public
    /// registry, a signature by the Ollama key (which names its owner).
    public func holdsCredentials(for name: ModelName) -> Bool {
        if credentials.credentials(for: name.host) != nil { return true }
        guard name.isPublicHost, let key = ollamaKeyPath else { return false }
        return FileSystem.exists(key)
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
