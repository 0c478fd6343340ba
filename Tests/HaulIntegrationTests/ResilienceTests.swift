import Foundation
import HaulTestSupport
import Testing

@testable import HaulKit

/// Pulls that get interrupted, killed, starved of disk, and served badly by
/// the test registry's fault injection: each must end in a verified blob or
/// a clear error, with the work done so far kept.
@Suite(.serialized) struct ResilienceTests {
    /// 640 MiB (the kill tests need a pull that lasts a few seconds) plus
    /// a 160 MiB model for the rest.
    static let fixture: (dir: TempDir, large: TestModel, medium: TestModel) = {
        let dir = TempDir("haul-resilience")
        let large = try! TestModel.make(root: dir.path, name: "library/large:latest", layers: ["640M", "1K"])
        let medium = try! TestModel.make(root: dir.path, name: "library/medium:latest", layers: ["160M"])
        return (dir, large, medium)
    }()

    static func blobSource(_ layer: Layer) -> String { fixture.dir.path + "/blobs/" + layer.digest.fileName }

    /// What the journal a resume would use claims: (bytes on disk, hashed
    /// prefix). The live journal, written at every checkpoint, is the one
    /// after a kill in the same boot.
    static func journal(_ store: ModelStore, _ digest: Digest) -> (ranges: Int64, hashed: Int64)? {
        for suffix in [".journal.live", ".journal"] {
            if let bytes = try? FileSystem.readFile(store.partialPath(digest) + suffix, limit: 1 << 20),
                let j = try? ResumeJournal.decode(bytes)
            {
                return (j.point.ranges.count, j.point.hashed)
            }
        }
        return nil
    }

    func pull(
        _ registry: TestRegistry, _ model: TestModel, _ extra: [String] = [], models: String,
        env: [String: String] = [:]
    ) throws -> RunResult {
        try run(
            haulBinary, ["pull", "--insecure"] + extra + ["\(registry.host)/\(model.name)"],
            environment: ["OLLAMA_MODELS": models].merging(env) { $1 })
    }

    /// Starts `haul pull` in the background and sends it `signal` once its
    /// live journal records `fraction` of `blob` on disk (read from the file,
    /// not asked of the registry, whose answers lag on a loaded machine);
    /// returns the stopped process and the seconds it took to exit.
    func interruptedPull(
        _ registry: TestRegistry, _ model: TestModel, _ blob: Layer, at fraction: Double,
        with signal: Int32, models: TempDir, logs: TempDir, extra: [String] = [],
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws -> (BackgroundProcess, Double) {
        let p = try BackgroundProcess(
            ["pull", "--insecure"] + extra + ["\(registry.host)/\(model.name)"], models: models.path, logs: logs)
        let target = Int64(Double(blob.size) * fraction)
        let store = ModelStore(root: models.path)
        let reached = try await waitUntil {
            guard
                let bytes = try? FileSystem.readFile(store.partialPath(blob.digest) + ".journal.live", limit: 1 << 20),
                let j = try? ResumeJournal.decode(bytes)
            else { return false }
            return j.point.ranges.count >= target
        }
        #expect(reached, "the pull never reached \(fraction)", sourceLocation: sourceLocation)
        p.send(signal)
        return (p, p.wait())
    }

    func expectVerified(_ model: TestModel, in models: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let store = ModelStore(root: models)
        for layer in model.layers {
            #expect(
                sameContent(store.blobPath(layer.digest), Self.blobSource(layer)),
                "\(layer.digest.short) differs", sourceLocation: sourceLocation)
        }
        #expect(FileSystem.listDirectory(store.partialsDirectory).isEmpty, sourceLocation: sourceLocation)
    }

    /// With `--direct-io` too: a kill loses what the stages held, never
    /// what the journal claims.
    @Test(arguments: [[], ["--direct-io"]])
    func sigkillAtSeveralPointsResumesWithoutRefetchingOrRehashing(extra: [String]) async throws {
        let model = Self.fixture.large
        let big = model.layers[0]
        let registry = try TestRegistry(root: Self.fixture.dir.path, rate: "4M")
        let models = TempDir("haul-models")
        let logs = TempDir("haul-logs")
        let store = ModelStore(root: models.path)
        var lastJournal: (ranges: Int64, hashed: Int64)?
        for fraction in [0.25, 0.6] {
            let (p, _) = try await interruptedPull(
                registry, model, big, at: fraction, with: SIGKILL, models: models, logs: logs,
                extra: extra)
            #expect(p.process.terminationReason == .uncaughtSignal)
            let j = try #require(Self.journal(store, big.digest), "a checkpoint exists after the kill at \(fraction)")
            // The kill came once the live journal held `fraction`: a kill
            // never takes back what was checkpointed, and the blob is not
            // done (the last 10% would make the second round moot).
            #expect(
                j.ranges >= Int64(Double(big.size) * fraction) && j.ranges < Int64(Double(big.size) * 0.9),
                "the checkpoint after the kill at \(fraction): \(j.ranges) of \(big.size)")
            #expect(j.hashed > 0)
            if let last = lastJournal { #expect(j.ranges > last.ranges) }
            lastJournal = j
            #expect(!FileSystem.exists(store.blobPath(big.digest)), "nothing under the final name")
        }
        let resumed = try pull(registry, model, extra, models: models.path, env: ["HAUL_DEBUG": "1"])
        #expect(resumed.status == 0, "\(resumed.stderr.suffix(2000))")
        #expect(resumed.stderr.contains("resuming \(big.digest.short):"))
        // The hash state was picked up exactly where the last checkpoint had it.
        let j = try #require(lastJournal)
        #expect(
            resumed.stderr.contains(
                "\(big.digest.short) done: hashed \(big.size - j.hashed) bytes this run, resumed at \(j.hashed)"),
            "\(resumed.stderr.split(separator: "\n").filter { $0.contains("done:") })")
        expectVerified(model, in: models.path)
        let served = try await registry.bytesServed(big.digest)
        #expect(Double(served) <= Double(big.size) * 1.05, "served \(served) for \(big.size)")
    }

    @Test func ctrlCStopsWithinASecondAndResumesFromTheFinalCheckpoint() async throws {
        let model = Self.fixture.medium
        let blob = model.layers[0]
        // 2 MB/s per connection: the signal lands seconds before the end,
        // even when a loaded machine reports progress late.
        let registry = try TestRegistry(root: Self.fixture.dir.path, rate: "2M")
        let models = TempDir("haul-models")
        let logs = TempDir("haul-logs")
        let (p, seconds) = try await interruptedPull(
            registry, model, blob, at: 1.0 / 3, with: SIGINT,
            models: models, logs: logs)
        #expect(seconds < 1.0, "took \(seconds) s to stop")
        #expect(p.process.terminationStatus == 130)
        #expect(p.stderr.contains("Interrupted:") && p.stderr.contains("again to resume"), "\(p.stderr.suffix(500))")
        let store = ModelStore(root: models.path)
        let j = try #require(Self.journal(store, blob.digest))
        let servedBefore = try await registry.bytesServed(blob.digest)
        // A clean stop checkpoints everything received: only bytes still in
        // flight on the sockets are lost.
        #expect(Double(j.ranges) >= Double(servedBefore) - 4 * 1024 * 1024, "kept \(j.ranges) of \(servedBefore)")

        let listed = try haul(["partials"], models: models.path)
        #expect(
            listed.stdout.contains(blob.digest.short) && listed.stdout.contains("library/medium"), "\(listed.stdout)")

        // The same in numbers, for scripts: what a resume keeps, read by
        // HaulKit's rules (nothing else parses a journal).
        let json = try haul(["partials", "--json"], models: models.path)
        let listing = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        let download = try #require((listing?["downloads"] as? [[String: Any]])?.first, "\(json.stdout)")
        #expect(download["digest"] as? String == blob.digest.description)
        #expect((download["completed"] as? Int).map(Int64.init) == j.ranges, "\(json.stdout)")
        #expect((download["hashed"] as? Int).map(Int64.init) == j.hashed, "\(json.stdout)")

        let resumed = try pull(registry, model, models: models.path, env: ["HAUL_LOG_FORMAT": "json"])
        #expect(resumed.status == 0, "\(resumed.stderr.suffix(1000))")
        expectVerified(model, in: models.path)
        let served = try await registry.bytesServed(blob.digest)
        #expect(Double(served) <= Double(blob.size) * 1.03, "served \(served) for \(blob.size)")
        // The pull's log line says the resume took the hash over where the
        // journal had it, and hashed only the rest.
        let line = try #require(
            resumed.stderr.split(separator: "\n").first { $0.contains("\"message\":\"pull\"") }, "\(resumed.stderr)")
        let record = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        let resumedHashed = Int64(record["resumed_hashed"] as? String ?? "")
        let hashed = Int64(record["hashed"] as? String ?? "")
        #expect(resumedHashed == j.hashed, "\(line)")
        let others = model.layers.filter { $0.digest != blob.digest }.reduce(0) { $0 + $1.size }
        #expect(hashed.map { $0 >= blob.size - j.hashed && $0 <= blob.size - j.hashed + others } == true, "\(line)")
    }

    @Test func resetsTruncationsAndServerErrorsAreRetried() async throws {
        let model = Self.fixture.medium
        let registry = try TestRegistry(root: Self.fixture.dir.path)
        try await registry.arm([
            ["kind": "reset", "fraction": 0.4, "times": 3],
            ["kind": "truncate", "fraction": 0.7, "times": 2],
            ["kind": "status", "status": 502, "times": 2]
        ])
        let models = TempDir("haul-models")
        let out = try pull(registry, model, models: models.path)
        #expect(out.status == 0, "\(out.stderr.suffix(1000))")
        expectVerified(model, in: models.path)
        let served = try await registry.bytesServed(model.layers[0].digest)
        #expect(Double(served) <= Double(model.layers[0].size) * 1.3)
    }

    @Test func aStalledConnectionIsAbandonedWhileItsPeersMove() async throws {
        let model = Self.fixture.medium
        let registry = try TestRegistry(root: Self.fixture.dir.path, rate: "2M")
        try await registry.arm([["kind": "stall", "fraction": 0.3, "seconds": 3600, "times": 1, "min_size": 1 << 20]])
        let models = TempDir("haul-models")
        // curl's own stall limit is set far out, so only the peer rule can
        // rescue the stalled range in time.
        let out = try pull(registry, model, ["--stall-timeout", "120"], models: models.path, env: ["HAUL_DEBUG": "1"])
        #expect(out.status == 0, "\(out.stderr.suffix(1000))")
        #expect(out.stderr.contains("while other connections receive"))
        #expect(out.seconds < 30, "took \(out.seconds) s")
        expectVerified(model, in: models.path)
    }

    @Test func aLoneStalledConnectionTimesOutAndRetries() async throws {
        let model = Self.fixture.medium
        let registry = try TestRegistry(root: Self.fixture.dir.path)
        try await registry.arm([["kind": "stall", "fraction": 0.5, "seconds": 3600, "times": 1, "min_size": 1 << 20]])
        let models = TempDir("haul-models")
        let out = try pull(registry, model, ["--connections", "1", "--stall-timeout", "2"], models: models.path)
        #expect(out.status == 0, "\(out.stderr.suffix(1000))")
        #expect(out.seconds >= 2 && out.seconds < 20, "took \(out.seconds) s")
        expectVerified(model, in: models.path)
    }

    @Test func retryAfterIsHonouredOn429() async throws {
        let model = Self.fixture.medium
        let registry = try TestRegistry(root: Self.fixture.dir.path)
        try await registry.arm([
            ["kind": "status", "status": 429, "headers": ["Retry-After": "2"], "times": 1, "min_size": 1 << 20]
        ])
        let models = TempDir("haul-models")
        let out = try pull(registry, model, ["--connections", "1"], models: models.path)
        #expect(out.status == 0, "\(out.stderr.suffix(1000))")
        // Backoff alone would have retried within 0.75 s.
        #expect(out.seconds >= 1.9, "took \(out.seconds) s")
        expectVerified(model, in: models.path)
    }

    @Test func aClientErrorFailsFastWithTheServersMessage() async throws {
        let model = Self.fixture.medium
        let registry = try TestRegistry(root: Self.fixture.dir.path, cdn: false)
        try await registry.arm([
            ["kind": "status", "status": 451, "body": "unavailable for legal reasons", "times": 100]
        ])
        let models = TempDir("haul-models")
        let out = try pull(registry, model, models: models.path)
        #expect(out.status == 1)
        #expect(out.stderr.contains("answered 451: unavailable for legal reasons"), "\(out.stderr.suffix(500))")
        #expect(out.seconds < 5)
        #expect(try await registry.requests(model.layers[0].digest) == 1)
    }

    @Test func expiredCDNURLsAreResolvedAgain() async throws {
        let model = Self.fixture.medium
        let registry = try TestRegistry(root: Self.fixture.dir.path, rate: "8M")
        try await registry.arm([["kind": "cdn-ttl", "seconds": 0.4]])
        let models = TempDir("haul-models")
        let out = try pull(registry, model, models: models.path)
        #expect(out.status == 0, "\(out.stderr.suffix(1000))")
        expectVerified(model, in: models.path)
        let stats = try await registry.stats()
        #expect((stats["expired"] as? Int ?? 0) >= 1, "the URLs did expire during the pull")
        #expect((stats["redirects"] as? Int ?? 0) >= 2, "and were resolved again")
    }

    @Test func aHopelessBlobStopsWithTheLastCause() async throws {
        let model = Self.fixture.medium
        let registry = try TestRegistry(root: Self.fixture.dir.path, cdn: false)
        try await registry.arm([["kind": "reset", "fraction": 0.0, "times": 1000]])
        let models = TempDir("haul-models")
        var config = EngineConfiguration()
        config.retryLimit = 2
        let haul = Haul(store: ModelStore(root: models.path), configuration: config)
        let (_, error) = await collect(haul.pull("\(registry.host)/\(model.name)", insecure: true))
        let text = "\(try #require(error))"
        #expect(text.hasPrefix("max retries exceeded: "), "\(text)")
        // curl's words for a body cut off after the headers.
        #expect(text.contains("transfer closed with") && text.contains("bytes remaining to read"), "\(text)")
    }

    @Test(arguments: [[], ["--direct-io"]])
    func aFullDiskStopsCleanlyAndTheRerunResumes(extra: [String]) async throws {
        let model = Self.fixture.medium
        let blob = model.layers[0]
        let shim = try Self.enospcShim()
        let registry = try TestRegistry(root: Self.fixture.dir.path)
        let models = TempDir("haul-models")
        let failed = try pull(
            registry, model, extra, models: models.path,
            env: ["LD_PRELOAD": shim, "HAUL_TEST_ENOSPC_AFTER": "\(blob.size / 2)"])
        #expect(failed.status == 1)
        #expect(
            failed.stderr.contains("Error: write ") && failed.stderr.contains("no space left on device"),
            "\(failed.stderr.suffix(500))")
        let store = ModelStore(root: models.path)
        let j = try #require(Self.journal(store, blob.digest), "the partial is kept for later")
        #expect(j.ranges > 0)
        let servedBefore = try await registry.bytesServed(blob.digest)
        let resumed = try pull(registry, model, extra, models: models.path)
        #expect(resumed.status == 0, "\(resumed.stderr.suffix(1000))")
        #expect(resumed.stderr.contains("resuming \(blob.digest.short)"))
        expectVerified(model, in: models.path)
        // The rerun fetches only what the journal did not have. (Bytes that
        // were on the wire when the disk filled are lost either way.)
        let refetched = try await registry.bytesServed(blob.digest) - servedBefore
        #expect(
            Int64(refetched) <= blob.size - j.ranges + (1 << 20),
            "refetched \(refetched), missing \(blob.size - j.ranges)")
    }

    @Test(.enabled(if: SmallFilesystem.available, "needs permission to mount a tmpfs"))
    func aDiskTooSmallFailsBeforeDownloading() async throws {
        let model = Self.fixture.medium
        let fs = try SmallFilesystem(megabytes: 64)
        let registry = try TestRegistry(root: Self.fixture.dir.path)
        let out = try pull(registry, model, models: fs.path + "/models")
        #expect(out.status == 1)
        #expect(
            out.stderr.contains("not enough disk space in \(fs.path)/models: the pull needs 168 MB more"),
            "\(out.stderr.suffix(500))")
        #expect(try await registry.requests(model.layers[0].digest) == 0)
    }

    @Test func corruptedResumedDataIsFetchedAgainFromScratch() async throws {
        let model = Self.fixture.medium
        let blob = model.layers[0]
        let registry = try TestRegistry(root: Self.fixture.dir.path, rate: "3M")
        let models = TempDir("haul-models")
        let logs = TempDir("haul-logs")
        _ = try await interruptedPull(registry, model, blob, at: 0.5, with: SIGINT, models: models, logs: logs)
        let store = ModelStore(root: models.path)
        let j = try #require(Self.journal(store, blob.digest))
        // Flip a byte the journal says is on disk but that was not hashed
        // yet: only the final digest can notice.
        let bytes = try FileSystem.readFile(store.partialPath(blob.digest) + ".journal.live", limit: 1 << 20)
        let ranges = try ResumeJournal.decode(bytes).point.ranges.ranges
        let target = try #require(ranges.first { $0.upperBound > j.hashed + 1 })
        let offset = max(target.lowerBound, j.hashed + 1)
        let fd = open(store.partialPath(blob.digest), O_RDWR)
        var byte: UInt8 = 0
        pread(fd, &byte, 1, off_t(offset))
        byte ^= 0xFF
        pwrite(fd, &byte, 1, off_t(offset))
        close(fd)

        let out = try pull(registry, model, models: models.path, env: ["HAUL_DEBUG": "1"])
        #expect(out.status == 0, "\(out.stderr.suffix(1000))")
        #expect(out.stderr.contains("downloading it again from scratch"))
        expectVerified(model, in: models.path)
    }

    /// Builds the LD_PRELOAD library that makes pwrite fail with ENOSPC.
    static func enospcShim() throws -> String {
        let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("faults/enospc.c").path
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("haul-enospc-\(getpid()).so").path
        if FileManager.default.fileExists(atPath: out) { return out }
        let compiler = ["/usr/bin/cc", "/opt/swift/usr/bin/clang"].first {
            FileManager.default.isExecutableFile(atPath: $0)
        }
        let built = try run(try #require(compiler), ["-shared", "-fPIC", "-O2", "-o", out, source, "-ldl"])
        guard built.status == 0 else { throw TestFailure("building the ENOSPC shim failed: \(built.stderr)") }
        return out
    }
}

/// A size-limited tmpfs, mounted for one test and unmounted after.
final class SmallFilesystem {
    let path: String
    private let dir: TempDir

    static let available: Bool = {
        let probe = TempDir("haul-mount-probe")
        guard (try? run("/bin/mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", probe.path]).status) == 0 else {
            return false
        }
        _ = try? run("/bin/umount", [probe.path])
        return true
    }()

    init(megabytes: Int) throws {
        dir = TempDir("haul-smallfs")
        path = dir.path
        let out = try run("/bin/mount", ["-t", "tmpfs", "-o", "size=\(megabytes)m", "tmpfs", path])
        guard out.status == 0 else { throw TestFailure("mount: \(out.stderr)") }
    }

    deinit { _ = try? run("/bin/umount", [path]) }
}
