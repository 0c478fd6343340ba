/// What a push reports, in the order Ollama's `/api/push` streams it
/// (`server/images.go` `PushModel`): `retrieving manifest`, then
/// `pushing <12 hex>` per blob with its bytes, `pushing manifest`,
/// `success`.
public enum PushEvent: Sendable, Equatable {
    /// The stored manifest is read.
    case retrievingManifest
    /// There is no such model here (Ollama's `couldn't retrieve manifest`,
    /// before the error).
    case manifestMissing
    /// Bytes of one blob the registry holds now (`completed` of `total`).
    case pushing(digest: Digest, total: Int64, completed: Int64)
    /// A blob the registry had already, or mounted from another of its
    /// repositories (`mountedFrom`): nothing was sent.
    case present(digest: Digest, total: Int64, mountedFrom: String?)
    /// The manifest is sent, after every blob.
    case pushingManifest
    /// Done: the destination serves the manifest, byte for byte.
    case success(digest: Digest)
}
