/// What a pull reports, in order: `pullingManifest`, `plan` (every blob and
/// the whole model's size, known before any byte moves), `resuming` for
/// blobs continuing an interrupted download, `progress` per blob
/// (interleaved, since blobs download concurrently), `verifying`,
/// `writingManifest`, `removingUnusedLayers` when the replaced manifest
/// left blobs nothing uses, `success`.
public enum PullEvent: Sendable, Equatable {
    case pullingManifest
    case plan(PullPlan)
    /// A blob continues from an interrupted download: `completed` bytes are
    /// already on disk, `hashed` of them verified and never hashed again.
    case resuming(BlobProgress)
    case progress(BlobProgress)
    case verifying
    case writingManifest
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
    case success
}

public struct PullPlan: Sendable, Equatable {
    public let name: ModelName
    public let manifestDigest: Digest
    /// Distinct blobs, in manifest order (layers, then config).
    public let blobs: [Layer]
    /// Blobs already stored, which need no download.
    public let cached: Set<Digest>

    public var totalBytes: Int64 { blobs.reduce(0) { $0 + $1.size } }
    public var missingBytes: Int64 { blobs.filter { !cached.contains($0.digest) }.reduce(0) { $0 + $1.size } }
}

public struct BlobProgress: Sendable, Equatable {
    public let digest: Digest
    public let total: Int64
    /// Bytes on disk; never decreases.
    public let completed: Int64
    /// Bytes already folded into the SHA-256; never decreases.
    public let hashed: Int64
}
