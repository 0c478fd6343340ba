/// What a pull reports, in order: `pullingManifest`, for a manifest list
/// `manifestProgress` while its child is fetched, `plan` (every blob and
/// the whole model's size, known before any byte moves), `resuming` for
/// blobs continuing an interrupted download, `progress` per blob
/// (interleaved, since blobs download concurrently), `verifying`,
/// `writingManifest`, `removingUnusedLayers` when the replaced manifest
/// left blobs nothing uses, `success`.
public enum PullEvent: Sendable, Equatable {
    /// The manifest is being fetched.
    case pullingManifest
    /// A manifest list's chosen child manifest is being fetched (as a blob):
    /// Ollama's `pulling model` lines with digest `sha256:model`.
    case manifestProgress(total: Int64, completed: Int64)
    /// The manifest is known: every blob, and which are stored already.
    case plan(PullPlan)
    /// A blob continues from an interrupted download: `completed` bytes are
    /// already on disk, `hashed` of them verified and never hashed again.
    case resuming(BlobProgress)
    /// New bytes of a blob are on disk.
    case progress(BlobProgress)
    /// Every blob is verified (Ollama's `verifying sha256 digest`).
    case verifying
    /// The manifest is being stored.
    case writingManifest
    /// Blobs only the replaced manifest used are being deleted.
    case removingUnusedLayers
    /// A status line with no fixed meaning: a pruning failure, or a line
    /// from a remote daemon that Haul does not model.
    case status(String)
    /// A mirror was skipped (unreachable, an error, a wrong digest) and the
    /// next host is tried. Not part of `/api/pull`'s stream.
    case notice(String)
    /// Where a blob's verified bytes came from (`host[:port]`). Not part of
    /// `/api/pull`'s stream.
    case source(digest: Digest, host: String)
    /// The model is stored.
    case success
}

/// What a pull will fetch, known before any byte moves.
public struct PullPlan: Sendable, Equatable {
    /// The model, as stored (an existing spelling of its name wins).
    public let name: ModelName
    /// The manifest's digest: the model's ID.
    public let manifestDigest: Digest
    /// Distinct blobs, in manifest order (layers, then config).
    public let blobs: [Layer]
    /// Blobs already stored, which need no download.
    public let cached: Set<Digest>

    /// Bytes of every blob of the model.
    public var totalBytes: Int64 { blobs.reduce(0) { $0 + $1.size } }
    /// Bytes of the blobs that are not stored yet.
    public var missingBytes: Int64 { blobs.filter { !cached.contains($0.digest) }.reduce(0) { $0 + $1.size } }
}

/// How far one blob is.
public struct BlobProgress: Sendable, Equatable {
    /// The blob.
    public let digest: Digest
    /// The blob's size.
    public let total: Int64
    /// Bytes on disk; never decreases.
    public let completed: Int64
    /// Bytes already folded into the SHA-256; never decreases.
    public let hashed: Int64
}
