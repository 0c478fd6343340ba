import Foundation

/// Version strings Haul shows to registries and to Ollama clients.
public enum Versions {
    /// Haul's own version.
    public static let haul = "0.1.0"
    /// The Ollama release whose API and behaviour Haul implements: the
    /// first with manifest lists and `manifests-v2/` (0.40; the 0.40.1
    /// patch release is the newest one known to carry them). Ollama's
    /// registry refuses models that need a newer client than the version in
    /// the User-Agent (HTTP 412), and Ollama clients read it from
    /// `/api/version`, so it must look like an Ollama version.
    public static let ollamaAPI = "0.40.1"

    /// `HAUL_OLLAMA_VERSION` when it is a version (`0.41.0`), else `ollamaAPI`:
    /// what to claim when a registry wants a newer client than Haul knows.
    public static func ollama(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        guard let value = environment["HAUL_OLLAMA_VERSION"], isVersion(value) else { return ollamaAPI }
        return value
    }

    /// `MAJOR.MINOR.PATCH` in digits, with an optional `-suffix` (`0.41.0-rc1`).
    public static func isVersion(_ text: String) -> Bool {
        let core = text.split(separator: "-", maxSplits: 1).first.map(String.init) ?? ""
        let parts = core.split(separator: ".", omittingEmptySubsequences: false)
        return text.utf8.count <= 40 && parts.count == 3
            && parts.allSatisfy { !$0.isEmpty && $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) }
            && text.unicodeScalars.allSatisfy { $0.isASCII && $0.value > 0x20 && $0.value < 0x7F }
    }

    /// What Haul says it is to registries: Ollama's `ollama/<version> (<arch> <os>)`
    /// (Ollama's `server/images.go` `makeRequest`), then Haul.
    public static func userAgent(ollama version: String) -> String {
        #if arch(arm64)
        let arch = "arm64"
        #else
        let arch = "amd64"
        #endif
        return "ollama/\(version) (\(arch) linux) haul/\(haul)"
    }

    /// The User-Agent with `ollamaAPI`.
    public static let userAgent = userAgent(ollama: ollamaAPI)
}
