/// Everything a `Haul` authenticates to registries with: where credentials
/// come from, the Ollama key's path, and the token cache its pulls share.
public struct RegistryAuth: Sendable {
    public var credentials: CredentialSource
    /// `~/.ollama/id_ed25519` by default; nil never signs.
    public var ollamaKeyPath: String?
    let tokens = TokenCache()

    public init(credentials: CredentialSource = .fromEnvironment(), ollamaKeyPath: String? = OllamaKey.defaultPath()) {
        self.credentials = credentials
        self.ollamaKeyPath = ollamaKeyPath
    }
}
