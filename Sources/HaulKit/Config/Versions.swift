/// Version strings Haul shows to registries and to Ollama clients.
public enum Versions {
    /// Haul's own version.
    public static let haul = "0.1.0"
    /// The Ollama release whose API and behaviour Haul implements. Ollama's
    /// registry gates new models on the client version in the User-Agent
    /// (HTTP 412; the User-Agent of Ollama's `server/images.go` `makeRequest`), and Ollama clients read it from
    /// `/api/version`, so it must look like an Ollama version.
    public static let ollamaAPI = "0.33.0"

    /// What Haul says it is to registries: Ollama's `ollama/<version> (<arch> <os>)`, then Haul.
    public static let userAgent: String = {
        #if arch(arm64)
        let arch = "arm64"
        #else
        let arch = "amd64"
        #endif
        return "ollama/\(ollamaAPI) (\(arch) linux) haul/\(haul)"
    }()
}
