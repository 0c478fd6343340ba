import Foundation
import HaulTestSupport
import Logging
import Synchronization
import Testing

@testable import HaulKit

/// Mirrors from containerd-style hosts.toml files, against real servers:
/// Debian's docker-registry as the upstream and a second one in proxy mode
/// as a pull-through cache, and the test registry as a mirror that fails in
/// chosen ways. Whatever a mirror does, nothing wrong is stored.
@Suite(.serialized) struct MirrorTests {
    static let fixture: (dir: TempDir, model: TestModel) = {
        let dir = TempDir("haul-mirror-fixture")
        let model = try! TestModel.make(
            root: dir.path, name: "library/tiny:latest", layers: ["64M", "300K"],
            texts: ["template={{ .Prompt }}"])
        return (dir, model)
    }()

    /// A hosts directory that sends pulls of `registry` to `mirrors` first.
    static func hostsDirectory(for registry: String, mirrors: [String], capabilities: String = #"["pull", "resolve"]"#)
        throws -> TempDir
    {
        let dir = TempDir("haul-hosts")
        try FileManager.default.createDirectory(atPath: dir.sub(registry), withIntermediateDirectories: true)
        let text = mirrors.map { "[host.\"\($0)\"]\ncapabilities = \(capabilities)\n" }.joined(separator: "\n")
        try text.write(toFile: dir.sub(registry + "/hosts.toml"), atomically: true, encoding: .utf8)
        return dir
    }

    struct Pull {
        let result: RunResult
        let models: TempDir
        /// digest hex → the host each blob came from (the --json source lines).
        var sources: [String: String] {
            var out: [String: String] = [:]
            for line in result.stdout.split(separator: "\n") {
                guard let o = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any],
                    o["status"] as? String == "source", let d = o["digest"] as? String, let h = o["host"] as? String
                else { continue }
                out[String(d.dropFirst("sha256:".count))] = h
            }
            return out
        }
    }

    static func pull(_ name: String, hosts: TempDir, environment: [String: String] = [:]) throws -> Pull {
        let models = TempDir("haul-models")
        var env = environment
        env["OLLAMA_MODELS"] = models.path
        let r = try run(haulBinary, ["pull", name, "--insecure", "--json", "--hosts-dir", hosts.path], environment: env)
        return Pull(result: r, models: models)
    }

    static func expectStored(_ pull: Pull, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(pull.result.status == 0, "\(pull.result.stderr)", sourceLocation: sourceLocation)
        let store = ModelStore(root: pull.models.path)
        #expect(store.list().count == 1, sourceLocation: sourceLocation)
        for layer in fixture.model.layers {
            #expect(
                sameContent(store.blobPath(layer.digest), fixture.dir.path + "/blobs/" + layer.digest.fileName),
                "\(layer.digest.short)", sourceLocation: sourceLocation)
        }
    }

    /// The upstream is the test registry with a bearer-token realm that
    /// takes a password: distribution's proxy mode authenticates upstream
    /// only through bearer realms (its `proxy/proxyauth.go` collects
    /// credentials per realm URL), so an htpasswd (Basic) upstream cannot be
    /// proxied by it at all.
    @Test func aPullThroughCacheServesThePullThenOutlivesTheUpstreamAndIsSkippedWhenDown() async throws {
        let upstream = try TestRegistry(root: Self.fixture.dir.path, cdn: true, tokenAuth: "alice:s3cret")
        let cache = try await DockerRegistry(proxy: ("http://\(upstream.host)", "alice", "s3cret"))
        let hosts = try Self.hostsDirectory(for: upstream.host, mirrors: [cache.url])
        let name = "\(upstream.host)/library/tiny"
        // Only the upstream gets these credentials; the cache has its own.
        let auth = ["HAUL_REGISTRY_AUTH": "\(upstream.host)=alice:s3cret"]

        // Cold cache: every blob comes through it.
        let cold = try Self.pull(name, hosts: hosts, environment: auth)
        Self.expectStored(cold)
        for layer in Self.fixture.model.layers {
            #expect(cold.sources[layer.digest.hex] == cache.host, "\(cold.result.stderr)")
        }
        // What the cold cache made the upstream send, per blob: Haul's first
        // range of a blob goes alone, the cold cache answers it with the
        // whole blob (200), and Haul takes that as one stream, so parallel
        // ranges do not multiply upstream traffic.
        for layer in Self.fixture.model.layers where layer.size > 1 << 20 {
            let bytes = try await upstream.bytesServed(layer.digest)
            #expect(
                Double(bytes) <= 1.2 * Double(layer.size), "upstream sent \(bytes) bytes of a \(layer.size)-byte blob")
            print(
                "cold pull-through cache: upstream sent \(bytes) bytes for a \(layer.size)-byte blob "
                    + "(\(String(format: "%.2f", Double(bytes) / Double(layer.size)))x)")
        }

        // The cache gone: one notice, then the registry itself.
        cache.stop()
        let fallback = try Self.pull(name, hosts: hosts, environment: auth)
        Self.expectStored(fallback)
        #expect(
            fallback.result.stderr.contains("haul: mirror \(cache.host) skipped for the manifest"),
            "\(fallback.result.stderr)")
        for layer in Self.fixture.model.layers {
            #expect(fallback.sources[layer.digest.hex] == upstream.host)
        }

        // The cache back and the upstream gone: a fresh store still pulls,
        // so the cache really holds the model.
        try await cache.restart()
        upstream.stop()
        let cached = try Self.pull(name, hosts: hosts, environment: auth)
        Self.expectStored(cached)
        #expect(Set(cached.sources.values) == [cache.host])
    }

    @Test func aMirrorServingCorruptBytesIsSkippedAndNothingWrongIsStored() async throws {
        let upstream = try TestRegistry(root: Self.fixture.dir.path, cdn: true)
        let mirror = try TestRegistry(root: Self.fixture.dir.path, cdn: false)
        try await mirror.arm([["kind": "corrupt", "fraction": 0.5, "times": 10_000, "min_size": 1 << 20]])
        let hosts = try Self.hostsDirectory(for: upstream.host, mirrors: ["http://\(mirror.host)"])
        let pull = try Self.pull("\(upstream.host)/library/tiny", hosts: hosts)
        Self.expectStored(pull)
        let big = Self.fixture.model.layers.first { $0.size > 1 << 20 }!
        #expect(
            pull.result.stderr.contains("haul: mirror \(mirror.host) skipped for \(big.digest.short)"),
            "\(pull.result.stderr)")
        #expect(pull.sources[big.digest.hex] == upstream.host)
        // The small layers were fine on the mirror, and came from it.
        for layer in Self.fixture.model.layers where layer.size < 1 << 20 {
            #expect(pull.sources[layer.digest.hex] == mirror.host)
        }
        #expect(try await mirror.counter("manifest_requests") == 1)
        #expect(try await upstream.counter("manifest_requests") == 0, "the manifest came from the mirror")
        #expect(
            !FileManager.default.fileExists(
                atPath: ModelStore(root: pull.models.path).partialsDirectory + "/" + big.digest.fileName + "-partial"))
    }

    @Test func anUnreachableMirrorIsSkippedAndCredentialsStayWithTheirHost() async throws {
        let upstream = try TestRegistry(root: Self.fixture.dir.path, cdn: true, tokenAuth: "alice:s3cret")
        let mirror = try TestRegistry(root: Self.fixture.dir.path, cdn: false)
        let dead = "http://127.0.0.1:\(freePort())"
        let auth = ["HAUL_REGISTRY_AUTH": "\(upstream.host)=alice:s3cret"]

        // A dead mirror first, then a live one: the live one serves all.
        let hosts = try Self.hostsDirectory(for: upstream.host, mirrors: [dead, "http://\(mirror.host)"])
        let pull = try Self.pull("\(upstream.host)/library/tiny", hosts: hosts, environment: auth)
        Self.expectStored(pull)
        #expect(
            pull.result.stderr.contains("haul: mirror \(dead.dropFirst(7)) skipped for the manifest"),
            "\(pull.result.stderr)")
        #expect(Set(pull.sources.values) == [mirror.host])
        // The upstream's password and tokens never went to the mirror.
        #expect(try await mirror.list("authorizations_seen").isEmpty)
        #expect(try await upstream.counter("token_requests") == 0)

        // A mirror that may only pull: the manifest comes from the
        // upstream (with its credentials), the blobs from the mirror.
        let pullOnly = try Self.hostsDirectory(
            for: upstream.host, mirrors: ["http://\(mirror.host)"], capabilities: #"["pull"]"#)
        let second = try Self.pull("\(upstream.host)/library/tiny", hosts: pullOnly, environment: auth)
        Self.expectStored(second)
        #expect(try await upstream.counter("manifest_requests") >= 1)
        #expect(Set(second.sources.values) == [mirror.host])
        #expect(try await mirror.list("authorizations_seen").isEmpty)

        // A malformed hosts.toml stops the pull with its file and line.
        let broken = TempDir("haul-hosts")
        try FileManager.default.createDirectory(atPath: broken.sub(upstream.host), withIntermediateDirectories: true)
        try "[host.\"http://\(mirror.host)\"]\ncapabilities = [\"pull\", \"resolv\"]\n"
            .write(toFile: broken.sub(upstream.host + "/hosts.toml"), atomically: true, encoding: .utf8)
        let refused = try Self.pull("\(upstream.host)/library/tiny", hosts: broken)
        #expect(refused.result.status == 1)
        let file = broken.sub(upstream.host + "/hosts.toml")
        #expect(
            refused.result.stdout.contains("\(file):1: host ") && refused.result.stdout.contains("unknown capability"),
            "\(refused.result.stdout)")
    }

    /// An embedder's `Logger` hears a skipped mirror at `.notice` and each
    /// blob's source at `.debug`, besides the pull's own events.
    @Test func anInjectedLoggerHearsTheSkippedMirrorAndTheSources() async throws {
        let upstream = try TestRegistry(root: Self.fixture.dir.path, cdn: true)
        // A mirror that has nothing: 404 for the manifest and every blob.
        let emptyRoot = TempDir("haul-empty-mirror")
        let empty = try TestRegistry(root: emptyRoot.path, cdn: false)
        let hosts = try Self.hostsDirectory(for: upstream.host, mirrors: ["http://\(empty.host)"])
        let records = RecordedLog()
        var logger = Logger(label: "embedder") { _ in RecordingHandler(records: records) }
        logger.logLevel = .debug
        let models = TempDir("haul-models")
        let haul = Haul(
            store: ModelStore(root: models.path), hosts: HostsDirectory(directories: [hosts.path]), logger: logger)
        let (_, error) = await collect(haul.pull("\(upstream.host)/library/tiny", insecure: true))
        await haul.shutdown()
        #expect(error == nil, "\(String(describing: error))")
        let lines = records.lines
        #expect(
            lines.contains {
                $0.level == .notice && $0.message.contains("mirror \(empty.host) skipped for the manifest")
            },
            "\(lines)")
        #expect(
            lines.filter { $0.level == .debug && $0.message.hasSuffix("from \(upstream.host)") }.count
                == Set(Self.fixture.model.layers.map(\.digest)).count, "\(lines)")
    }
}

/// Log lines an injected `Logger` received.
final class RecordedLog: Sendable {
    private let storage = Mutex<[(level: Logger.Level, message: String)]>([])
    var lines: [(level: Logger.Level, message: String)] { storage.withLock { $0 } }
    func append(_ level: Logger.Level, _ message: String) { storage.withLock { $0.append((level, message)) } }
}

struct RecordingHandler: LogHandler {
    let records: RecordedLog
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) { records.append(event.level, "\(event.message)") }
}
