/// Everything a `Haul` authenticates to registries with: where credentials
/// come from, the Ollama key's path, Hugging Face's token (and the mirror
/// that token may go to), and the token cache its pulls share.
public struct RegistryAuth: Sendable {
    public var credentials: CredentialSource
    /// `~/.ollama/id_ed25519` by default; nil never signs.
    public var ollamaKeyPath: String?
    public var huggingFace: HuggingFace
    let tokens = TokenCache()

    public init(credentials: CredentialSource = .fromEnvironment(), ollamaKeyPath: String? = OllamaKey.defaultPath(),
                huggingFace: HuggingFace = .fromEnvironment()) {
        self.credentials = credentials
        self.ollamaKeyPath = ollamaKeyPath
        self.huggingFace = huggingFace
    }
}
