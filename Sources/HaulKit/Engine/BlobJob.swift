/// A blob download handed to the loop. The caller owns `fd` (opened,
/// locked and preallocated) and keeps it open until `checkpoints.finish`.
struct BlobJob: Sendable {
    let digest: Digest
    let size: Int64
    /// `{registry}/v2/{namespace}/{model}/blobs/{digest}`.
    let url: String
    /// Headers sent to the registry host only (never to a CDN).
    let registryHeaders: [String]
    let fd: Int32
    /// The data file, for error messages.
    let path: String

    /// What the data file already holds, from its journal.
    let resume: ResumePoint
    /// Where checkpoints go; it also keeps `fd` open until `finish`.
    let checkpoints: any CheckpointSink
    /// The source host's own TLS settings (a mirror's), if any.
    var tls: HostTLS? = nil
    /// The source is a mirror (maybe a pull-through cache that is cold).
    var fromMirror = false
    /// Which addresses its connections (the registry, its redirects, a
    /// CDN) may reach.
    var addressPolicy: AddressPolicy
}

enum BlobEvent: Sendable {
    /// Bytes on disk and bytes folded into the hash, both monotonic.
    case progress(written: Int64, hashed: Int64)
    /// Every byte is on disk and hashed; this is the SHA-256 of the file.
    case finished(Digest)
    case failed(HaulError)
}
