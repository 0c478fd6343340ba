import Foundation

/// Hugging Face as a registry: `hf.co/USER/REPO:QUANT`, as Ollama pulls it.
///
/// HF's registry answers on `hf.co` and names its token realm on
/// `huggingface.co`. Ollama pins the realm to the registry's own host
/// (`server/auth.go` `getAuthorizationToken`: "realm host … does not match
/// original host") and so cannot sign for HF's realm (ollama issue
/// #15661). Here the two hosts, and the host `HF_ENDPOINT` names, are one
/// party: a realm of the party counts as the registry's own when the
/// registry is of the party too.
///
/// - `HF_TOKEN` (else the file `hf auth login` writes: `HF_TOKEN_PATH`,
///   `$HF_HOME/token`, `~/.cache/huggingface/token`) goes as
///   `Authorization: Bearer` to such a realm only. The token the realm
///   mints with it goes back to the registry that asked, which is why a
///   registry outside the party never gets one minted with HF_TOKEN, even
///   when its challenge names HF's realm.
/// - `HF_ENDPOINT` (as `huggingface_hub` reads it) is a mirror tried first
///   for HF's names, for manifests and blobs; blobs from it are verified
///   like those of any mirror.
public struct HuggingFace: Sendable, Equatable {
    /// The hosts HF's registry answers on.
    public static let hosts: Set<String> = ["hf.co", "huggingface.co"]

    /// The token sent to HF's realm (`HF_TOKEN`); nil sends none.
    public var token: String?
    /// A mirror's base URL (`https://hf-mirror.example`), not yet checked.
    public var endpoint: String?

    /// No token and no mirror unless given.
    public init(token: String? = nil, endpoint: String? = nil) {
        self.token = token
        self.endpoint = endpoint
    }

    /// `HF_TOKEN`, else the token file; `HF_ENDPOINT`.
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment)
        -> HuggingFace
    {
        func value(_ key: String) -> String? {
            environment[key]?.trimmingCharacters(in: .whitespacesAndNewlines).nilIfEmpty
        }
        var token = value("HF_TOKEN")
        if token == nil {
            let home =
                value("HF_HOME")
                ?? ((value("XDG_CACHE_HOME") ?? ((environment["HOME"] ?? NSHomeDirectory()) + "/.cache"))
                    + "/huggingface")
            let path = value("HF_TOKEN_PATH") ?? home + "/token"
            if FileSystem.exists(path), let bytes = try? FileSystem.readFile(path, limit: 64 << 10) {
                token =
                    String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines).nilIfEmpty
            }
        }
        return HuggingFace(token: token, endpoint: value("HF_ENDPOINT"))
    }

    /// Whether `url` is on one of HF's hosts, or on the endpoint's.
    func includes(_ url: String) -> Bool {
        guard let parts = URLParts(url) else { return false }
        if parts.scheme == "https" && parts.port == 443 && Self.hosts.contains(parts.host) { return true }
        guard let endpoint, let mirror = URLParts(endpoint) else { return false }
        return mirror.sameOrigin(parts)
    }

    /// `Authorization` for a token request to a realm of the party, or nil
    /// when there is no token. A token that would break the header line is
    /// refused rather than sent.
    func tokenAuthorization() throws(HaulError) -> String? {
        guard let token else { return nil }
        guard token.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw .authentication("HF_TOKEN holds characters a Hugging Face token cannot have")
        }
        return "Bearer " + token
    }

    /// The mirror for `name`, when it is one of HF's and `HF_ENDPOINT`
    /// names somewhere else than HF itself.
    func mirror(for name: ModelName) throws(HaulError) -> RegistryHost? {
        guard Self.hosts.contains(name.host.lowercased()), var endpoint else { return nil }
        guard let parts = URLParts(endpoint), !endpoint.contains("?"), !endpoint.contains("#") else {
            throw .hostsConfig(
                path: "HF_ENDPOINT", line: nil,
                message: "\"\(HaulError.quoted(endpoint))\" is not an http(s) URL (e.g. https://hf-mirror.example)")
        }
        if parts.scheme == "https" && parts.port == 443 && Self.hosts.contains(parts.host) { return nil }
        while endpoint.hasSuffix("/") { endpoint.removeLast() }
        return RegistryHost(root: endpoint + "/v2", capabilities: .all, isMirror: true)
    }
}
