import Foundation

/// Tunables of the download engine. The defaults come from `make bench`
/// measurements on a 2-core machine (see bench/RESULTS.md) and depend on
/// nothing outside the program: `EngineConfiguration()` reads no
/// environment variable. `fromEnvironment()` reads the ones the CLI and the
/// daemon honour.
public struct EngineConfiguration: Sendable {
    /// Where blobs are hashed.
    public enum HashMode: String, Sendable {
        /// A hashing thread per blob reads back from the page cache while the
        /// loop thread only receives and writes.
        case threaded
        /// The loop thread hashes: straight from curl's buffer when bytes land
        /// on the frontier, by reading back otherwise.
        case inline
    }

    /// Concurrent range connections, across all blobs of all pulls.
    public var connections = 16
    /// Each origin's count is found by measuring, `connections` being the
    /// ceiling (`ConnectionController`): a server that punishes many
    /// connections gets fewer. False keeps `connections` for every origin.
    public var adaptiveConnections = true
    /// Blob downloads open at once across all pulls (each holds a
    /// preallocated file and a hashing thread); more wait their turn.
    public var openBlobs = 32
    /// Largest piece a connection is handed at once.
    public var maxPieceSize: Int64 = 64 << 20
    /// Smallest piece handed to a connection from what no range covers yet
    /// (pieces shrink toward this as the unassigned part of a blob runs out).
    public var minNewPieceSize: Int64 = 4 << 20
    /// Smallest part split off a running range (slow-tail splits, steals).
    public var minSplitSize: Int64 = 1 << 20
    /// The former name of `minNewPieceSize`.
    @available(*, deprecated, renamed: "minNewPieceSize")
    public var minCutSize: Int64 {
        get { minNewPieceSize }
        set { minNewPieceSize = newValue }
    }
    /// The former name of `minSplitSize`.
    @available(*, deprecated, renamed: "minSplitSize")
    public var minPieceSize: Int64 {
        get { minSplitSize }
        set { minSplitSize = newValue }
    }
    /// An idle connection only takes over a range expected to need at least
    /// this many more seconds.
    public var minStealSeconds = 1.0
    /// Where blobs are hashed; `threaded` keeps the loop free for receiving.
    public var hashMode: HashMode = .threaded
    /// Write blobs with O_DIRECT, past the page cache (`--direct-io`,
    /// `HAUL_DIRECT_IO=1`): each connection gathers `stageSize` bytes in an
    /// aligned buffer and writes them at once, and the hasher reads them
    /// back from the device. Filesystems without O_DIRECT are written
    /// through the page cache as usual.
    public var directIO = false
    /// A direct-I/O connection's buffer (rounded down to 4 KiB multiples).
    public var stageSize = 1 << 20
    /// Which hosts may be reached at private, loopback, link-local or
    /// shared addresses: Ollama's rule for a user's own pulls by default;
    /// a daemon sets `.daemon(environment)`.
    public var privateAddresses: PrivateAddresses = .registryHost
    /// The `User-Agent` of every request.
    public var userAgent = Versions.userAgent
    /// curl's receive buffer per connection.
    public var receiveBufferSize = 256 << 10
    /// Failed attempts of one range, without progress in between, before the
    /// blob fails.
    public var retryLimit = 6
    /// Failed transfers of one blob in all, progress or not, before it
    /// fails: stops a server that always breaks after a few bytes.
    public var failureBudget = 60
    /// Time without a byte before a connection counts as stalled, even
    /// with no peers to compare against (curl's low-speed limit; whole
    /// seconds).
    public var stallTimeout: Duration = .seconds(15)
    /// A connection that received nothing for this long while its peers
    /// kept receiving is abandoned and its range given to a fresh one.
    public var peerStall: Duration = .seconds(3)
    /// A resume checkpoint is taken after this many new bytes of a blob...
    public var checkpointBytes: Int64 = 4 << 20
    /// ...or after this long, whichever comes first. Each is recorded at
    /// once for a process crash; every `durableCheckpointBytes` or
    /// `durableCheckpointInterval` one is also made power-loss safe.
    public var checkpointInterval: Duration = .milliseconds(500)
    /// New bytes of a blob between checkpoints that survive a power cut (after an `fdatasync`).
    public var durableCheckpointBytes: Int64 = 64 << 20
    /// Time between checkpoints that survive a power cut.
    public var durableCheckpointInterval: Duration = .seconds(2)
    /// How long to wait for a connection (TCP and TLS) before retrying
    /// (whole seconds).
    public var connectTimeout: Duration = .seconds(30)
    /// All ranges of all pulls together receive at most this many bytes a
    /// second (`--limit-rate`, `HAUL_LIMIT_RATE`); nil: no limit.
    public var maxBytesPerSecond: Int64? = nil
    /// A CA bundle to trust instead of the system store (`--ca-file`, or
    /// `SSL_CERT_FILE` as OpenSSL-based tools read it).
    public var caFile: String? = nil
    /// A directory of hashed CA certificates (`SSL_CERT_DIR`).
    public var caDirectory: String? = nil
    /// Accept any TLS certificate. Only by explicit request: it lets anyone
    /// on the path impersonate the registry.
    public var skipTLSVerification = false
    /// Proxies to use; none by default. `fromEnvironment()` reads
    /// HTTP(S)_PROXY / NO_PROXY the way Go (and so Ollama) reads them.
    public var proxies = ProxySettings()
    /// Traces the engine's decisions (pieces, splits, retries) to stderr
    /// (`HAUL_DEBUG=1`). The trace is process-wide: once one engine turns
    /// it on, every engine of the process traces.
    public var debugTrace = false

    /// Haul's defaults, with nothing read from the environment.
    public init() {}

    /// The defaults, then what the environment sets: `HAUL_DIRECT_IO=1`,
    /// `SSL_CERT_FILE`, `SSL_CERT_DIR`, `HTTP_PROXY`/`HTTPS_PROXY`/`NO_PROXY`
    /// (either case), `HAUL_DEBUG=1` and `HAUL_OLLAMA_VERSION` (the Ollama
    /// version the User-Agent claims). `HAUL_LIMIT_RATE` is parsed by the
    /// CLI, which can report a malformed value.
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment)
        -> EngineConfiguration
    {
        var configuration = EngineConfiguration()
        configuration.directIO = OllamaEnvironment.string("HAUL_DIRECT_IO", environment) == "1"
        configuration.caFile = OllamaEnvironment.string("SSL_CERT_FILE", environment).nilIfEmpty
        configuration.caDirectory = OllamaEnvironment.string("SSL_CERT_DIR", environment).nilIfEmpty
        configuration.proxies = .fromEnvironment(environment)
        configuration.debugTrace = environment["HAUL_DEBUG"] == "1"
        configuration.userAgent = Versions.userAgent(ollama: Versions.ollama(environment))
        return configuration
    }
}
