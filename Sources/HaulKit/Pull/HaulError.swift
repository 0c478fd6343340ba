#if canImport(Glibc)
import Glibc
#endif

/// Everything that can stop a pull, with the text a user needs to act.
/// Where Ollama has a message for the same condition, `description` is that
/// message (Ollama's `server/images.go` `PullModel` and `pullModelManifest`), so scripts that match on it keep working.
public enum HaulError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A name outside Ollama's grammar.
    case invalidModelName
    /// A digest that is not `sha256:` and 64 lower-case hex digits.
    case invalidDigest(String)
    /// No model of that name is stored.
    case modelNotFound(String)
    /// The registry answered 404 for the manifest.
    case manifestNotFound
    /// The registry answered another error status for the manifest.
    case manifestStatus(Int, body: String)
    /// The manifest is not one Haul can trust (malformed, too large, bad digests or sizes).
    case manifestInvalid(String)
    /// The registry refused access (after any token or credentials were
    /// tried); the text says what to do.
    case unauthorized(String)
    /// Haul's own authentication material is unusable (e.g. the Ollama key).
    case authentication(String)
    /// A blob request was refused with 401 (a token that expired mid-pull);
    /// the pull answers the challenge and resumes.
    case blobUnauthorized(challenge: String?)
    /// The manifest request failed before any answer.
    case manifestUnreachable(url: String, message: String)
    /// The disk cannot hold the missing bytes.
    case insufficientSpace(path: String, needed: Int64, available: Int64)
    /// A network failure talking to `url`.
    case network(url: String, message: String)
    /// The registry has no such blob.
    case blobNotFound(Digest)
    /// A blob kept failing; `lastError` is the last real cause.
    case retriesExhausted(Digest, lastError: String)
    /// A blob's bytes hashed to `got`, twice; nothing was stored under `want`.
    case digestMismatch(want: Digest, got: Digest)
    /// A system call on one of Haul's files failed.
    case io(operation: String, path: String, errno: Int32)
    /// The pull was cancelled; its partial data is kept for a later resume.
    case cancelled
    /// A `--limit-rate`/`HAUL_LIMIT_RATE` value that is not a rate.
    case invalidRate(String)
    /// An OCI layout or archive that cannot be imported (or exported), and why.
    case archive(String, String)
    /// A hosts.toml that cannot be used, with where it is wrong.
    case hostsConfig(path: String, line: Int?, message: String)
    /// An Ollama cloud model (`ModelName.isCloudReference`), as written.
    case cloudModel(String)
    /// A runner name Ollama does not know (`server/routes.go` `normalizeRunner`).
    case unknownRunner(String)
    /// A manifest list with no child for the runners tried, or a manifest
    /// that declares another runner than the one asked for.
    case noCompatibleManifest(runners: [String])
    /// The registry refused the manifest to the Ollama version Haul claims
    /// (HTTP 412: the model needs a newer client), with its message.
    case clientVersionRefused(claimed: String, message: String)
    /// A named manifest in the store that cannot be used: a link that
    /// dangles or leads out of the store, bytes that do not hash to the
    /// blob's name, a file that does not parse.
    case storedManifest(path: String, problem: String)
    /// A blob a push could not put in the destination registry, and why.
    case push(blob: Digest, String)
    /// The destination registry refused or changed a pushed manifest.
    case pushManifest(String)
    /// The destination registry refused the credentials (or asked for some).
    case pushUnauthorized(String)

    public var description: String {
        switch self {
        case .invalidModelName:
            return "invalid model name"
        case .invalidDigest(let text):
            return "invalid digest format: \(Self.quoted(text))"
        case .modelNotFound(let name):
            return "model '\(name)' not found"
        case .manifestNotFound:
            return "pull model manifest: file does not exist"
        case .manifestStatus(let status, let body):
            return body.isEmpty ? "pull model manifest: \(status)" : "pull model manifest: \(status): \(body)"
        case .manifestInvalid(let why):
            return "pull model manifest: invalid manifest: \(why)"
        case .unauthorized(let detail):
            return "pull model manifest: unauthorized: \(detail)"
        case .authentication(let detail):
            return "pull model manifest: \(detail)"
        case .blobUnauthorized:
            return "unauthorized: access denied"
        case .manifestUnreachable(let url, let message):
            return "pull model manifest: Get \"\(url)\": \(message)"
        case .insufficientSpace(let path, let needed, let available):
            return "not enough disk space in \(path): the pull needs \(ByteFormat.decimal(needed)) more, "
                + "\(ByteFormat.decimal(available)) available"
        case .network(let url, let message):
            return "\(url): \(message)"
        case .blobNotFound(let digest):
            return "\(digest): file does not exist"
        case .retriesExhausted(_, let lastError):
            return "max retries exceeded: \(lastError)"
        case .digestMismatch(let want, let got):
            return "digest mismatch, file must be downloaded again: want \(want), got \(got)"
        case .io(let operation, let path, let code):
            return "\(operation) \(path): \(String(cString: strerror(code)).lowercased())"
        case .invalidRate(let text):
            return
                "invalid rate \"\(Self.quoted(text, limit: 40))\": give bytes per second, with an optional K, M or G suffix (500K, 20M, 1G)"
        case .archive(let path, let message):
            return "\(path): \(message)"
        case .hostsConfig(let path, let line, let message):
            return "\(path)\(line.map { ":\($0)" } ?? ""): \(message)"
        case .cloudModel(let name):
            return
                "\"\(Self.quoted(name))\" is an Ollama cloud model: it runs on ollama.com and has no weights to pull "
                + "(pull a local tag, without -cloud)"
        case .unknownRunner(let runner):
            return "unknown runner \"\(Self.quoted(runner, limit: 40))\""
        case .noCompatibleManifest(let runners):
            return "no compatible manifest found for runners: " + runners.joined(separator: ", ")
        case .clientVersionRefused(let claimed, let message):
            return
                "pull model manifest: 412: \(message.isEmpty ? "this model requires a newer version of Ollama" : message) "
                + "(Haul speaks as Ollama \(claimed); if a newer Ollama pulls this model, set HAUL_OLLAMA_VERSION to that "
                + "version, e.g. HAUL_OLLAMA_VERSION=0.41.0)"
        case .storedManifest(let path, let problem):
            return "\(path): \(problem); pull the model again, or remove it with 'haul rm'"
        case .push(let blob, let message):
            return "push \(blob.short): \(message)"
        case .pushManifest(let message):
            return "push manifest: \(message)"
        case .pushUnauthorized(let detail):
            return "push: unauthorized: \(detail)"
        case .cancelled:
            return "pull cancelled"
        }
    }

    /// The text a user is shown for any error: a `HaulError`'s own
    /// description, Swift's for anything else.
    public static func text(of error: any Error) -> String {
        (error as? HaulError)?.description ?? "\(error)"
    }

    /// Untrusted text shown in a message: bounded and free of control bytes.
    /// What a terminal or a log reader may take for something else: C0 and
    /// C1 controls, DEL, line and paragraph separators (U+2028, U+2029,
    /// which end a line for JavaScript and some log viewers) and the
    /// bidirectional overrides and isolates that reorder what is shown.
    static func isUnsafe(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0..<0x20, 0x7F...0x9F, 0x2028, 0x2029, 0x202A...0x202E, 0x2066...0x2069: return true
        default: return false
        }
    }

    static func quoted(_ text: String, limit: Int = 120) -> String {
        var out = ""
        for scalar in text.unicodeScalars.prefix(limit) {
            out += isUnsafe(scalar) ? "?" : String(scalar)
        }
        return text.unicodeScalars.count > limit ? out + "…" : out
    }
}
