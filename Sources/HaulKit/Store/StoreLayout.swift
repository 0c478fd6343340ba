/// Which of Ollama's layouts Haul writes a named manifest in. Reading
/// always covers both.
public enum StoreLayout: String, Sendable, CaseIterable {
    /// The layout the store's Ollama reads: `v2` when the store has a
    /// `manifests-v2/` directory (Ollama ≥ 0.40 makes it whenever it looks
    /// a name up, `manifest/paths.go` `V2Path`), `v1` otherwise.
    case auto
    /// `manifests/<host>/<ns>/<model>/<tag>` holding the bytes (Ollama
    /// before 0.40). A v2 entry of the same name is removed, so no Ollama
    /// goes on reading an older version.
    case v1
    /// The bytes as `blobs/sha256-<hex>`, `manifests-v2/…/<tag>` a relative
    /// link to it, and a legacy file beside it for Ollama releases that
    /// read only `manifests/` (`manifest/manifest.go` `writeManifestData`,
    /// `WriteLegacyManifestData`).
    case v2

    /// `HAUL_STORE_LAYOUT`, if set to one of the layouts.
    public static func fromEnvironment(_ environment: [String: String]) -> StoreLayout? {
        environment["HAUL_STORE_LAYOUT"].flatMap { StoreLayout(rawValue: $0.lowercased()) }
    }
}

extension ModelStore {
    /// The layout a write uses now (`auto` decided by the store).
    public var effectiveLayout: StoreLayout {
        switch layout {
        case .auto: return FileSystem.isDirectory(manifestsV2Directory) ? .v2 : .v1
        case .v1, .v2: return layout
        }
    }
}
