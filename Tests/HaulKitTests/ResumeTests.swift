import CShims
import Foundation
import HaulTestSupport
import Testing

@testable import HaulKit

/// The resume journal, the partial blob that reads it back, the checkpoint
/// writer and the retry rules: the pieces crash-safe resume is built from.
@Suite struct ResumeTests {
    static let digest = try! Digest(parsing: "sha256:" + String(repeating: "ab", count: 32))

    /// A hash state for the first `n` bytes of `data`, as the engine exports it.
    static func state(of data: [UInt8], prefix n: Int) -> [UInt8] {
        let fd = memfd(data)
        defer { close(fd) }
        let h = Hasher(fd: fd, size: Int64(data.count), mode: .inline)!
        h.advance(to: Int64(n))
        while h.hashed < Int64(n) { _ = h.step(budget: 1 << 20) }
        return h.export()!
    }

    /// An unlinked temp file holding `data`.
    static func memfd(_ data: [UInt8]) -> Int32 {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("haul-state-\(UUID())").path
        let fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0o600)
        unlink(path)
        _ = data.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        return fd
    }

    static func sample(size: Int64 = 10_000) -> ResumeJournal {
        let data = (0..<Int(size)).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        return ResumeJournal(
            digest: digest, size: size, model: "registry.ollama.ai/library/x:latest", boot: nil,
            point: ResumePoint(
                ranges: RangeSet([0..<3000, 5000..<6000]),
                hashState: state(of: data, prefix: 2000)))
    }

    @Test func journalRoundTrips() throws {
        let j = Self.sample()
        let back = try ResumeJournal.decode(j.encode())
        #expect(back == j)
        #expect(back.point.hashed == 2000)
        #expect(back.point.ranges.count == 4000)
        let empty = ResumeJournal(digest: Self.digest, size: 5, model: "m", boot: "b00t", point: .empty)
        #expect(try ResumeJournal.decode(empty.encode()) == empty)
    }

    @Test func journalRejectsTornEditedAndInconsistentFiles() throws {
        let good = Self.sample().encode()
        func rejects(_ bytes: [UInt8], _ why: String, sourceLocation: SourceLocation = #_sourceLocation) {
            do {
                _ = try ResumeJournal.decode(bytes)
                Issue.record("accepted: \(why)", sourceLocation: sourceLocation)
            } catch {
                #expect("\(error)".contains(why), "\(error)", sourceLocation: sourceLocation)
            }
        }
        // Torn at every length: never accepted.
        for n in stride(from: 0, to: good.count - 1, by: 37) {
            #expect(throws: ResumeJournal.Invalid.self) { try ResumeJournal.decode(Array(good.prefix(n))) }
        }
        var flipped = good
        flipped[40] ^= 1
        rejects(flipped, "checksum mismatch")
        rejects(Array("hello\n".utf8), "not a haul journal")
        rejects(Array(repeating: 0x41, count: ResumeJournal.maxBytes + 1), "larger than")

        // Well-formed (valid checksum) but impossible content.
        func resigned(_ edit: (inout [String]) -> Void) -> [UInt8] {
            var lines = String(decoding: good, as: UTF8.self).split(separator: "\n").map(String.init)
            lines.removeLast()
            edit(&lines)
            let body = Array(lines.map { $0 + "\n" }.joined().utf8)
            return body + Array("check \(Digest(bytes: SHA256.hash(body)).hex)\n".utf8)
        }
        rejects(resigned { $0.append("range 2500 2600") }, "bad range")  // overlaps, out of order
        rejects(resigned { $0.append("range 9000 10001") }, "bad range")  // past the end
        rejects(resigned { $0[5] = "range 0 1000" }, "hash state beyond")  // hashed 2000 > prefix
        rejects(resigned { $0[4] = "hashed 1999 " + $0[4].split(separator: " ")[2] }, "bad hash state")
        rejects(resigned { $0[1] = "digest sha256:../../etc" }, "bad digest")
        rejects(resigned { $0[2] = "size -5" }, "bad size")
        rejects(resigned { $0[4] = "hashed 10 -" }, "without a state")
        #expect(try ResumeJournal.decode(resigned { _ in }) == Self.sample())
    }

    @Test func aCheckpointedPartialResumesWithItsDataAndHashState() async throws {
        let dir = TempDir()
        let path = dir.sub("sha256-x-partial")
        let size: Int64 = 1 << 20
        let point: ResumePoint
        do {
            let partial = try PartialBlob(path: path, digest: Self.digest, size: size, model: "m")
            #expect(partial.resume == .empty)
            #expect(partial.discarded == nil)
            let data = [UInt8](repeating: 7, count: 300_000)
            _ = data.withUnsafeBytes { pwrite(partial.fd, $0.baseAddress, $0.count, 0) }
            point = ResumePoint(ranges: RangeSet([0..<300_000]), hashState: Self.state(of: data, prefix: 65_536))
            partial.checkpoint(ResumePoint(ranges: RangeSet([0..<1000]), hashState: nil))
            partial.finish(point)
            partial.checkpoint(.empty)  // after finish: ignored
            await partial.settled()
        }
        let again = try PartialBlob(path: path, digest: Self.digest, size: size, model: "m")
        #expect(again.resume == point)
        #expect(again.resume.hashed == 65_536)
        var byte: UInt8 = 0
        #expect(pread(again.fd, &byte, 1, 299_999) == 1 && byte == 7)
        #expect(FileSystem.size(path) == size)
    }

    /// The hash state stands for bytes that are not read again on resume:
    /// a data file changed behind the journal's back (here: zeros where
    /// hashed bytes were, as a second process truncating it would leave)
    /// must be fetched again, not resumed into a digest that still matches.
    @Test func aJournalWhoseDataChangedIsNotResumed() async throws {
        let dir = TempDir()
        let path = dir.sub("sha256-w-partial")
        let size: Int64 = 1 << 20
        let data = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        do {
            let partial = try PartialBlob(path: path, digest: Self.digest, size: size, model: "m")
            _ = data.withUnsafeBytes { pwrite(partial.fd, $0.baseAddress, $0.count, 0) }
            partial.finish(
                ResumePoint(ranges: RangeSet([0..<300_000]), hashState: Self.state(of: data, prefix: 65_536)))
            await partial.settled()
        }
        let journal = try ResumeJournal.decode(FileSystem.readFile(path + ".journal", limit: 1 << 20))
        #expect(journal.anchor == Digest(bytes: SHA256.hash(Array(data[61_440..<65_536]))))
        // Unchanged: resumed.
        do {
            let again = try PartialBlob(path: path, digest: Self.digest, size: size, model: "m")
            #expect(again.resume.hashed == 65_536)
        }
        // Hashed bytes zeroed behind the journal's back: not resumed.
        let fd = open(path, O_RDWR)
        let zeros = [UInt8](repeating: 0, count: 8192)
        _ = zeros.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 60_000) }
        close(fd)
        let changed = try PartialBlob(path: path, digest: Self.digest, size: size, model: "m")
        #expect(changed.resume == .empty)
        #expect(changed.discarded == "the data file changed since its journal was written")
    }

    @Test func theLiveJournalCountsOnlyWithinTheSameBoot() async throws {
        let dir = TempDir()
        let path = dir.sub("sha256-z-partial")
        let size: Int64 = 1 << 20
        let durable = ResumePoint(ranges: RangeSet([0..<1000]), hashState: nil)
        let live = ResumePoint(ranges: RangeSet([0..<1500]), hashState: nil)
        do {
            // Every checkpoint is live; one per 1000 new bytes is durable.
            let partial = try PartialBlob(
                path: path, digest: Self.digest, size: size, model: "m",
                durableEvery: (1000, 1e9))
            partial.checkpoint(durable)
            try await Task.sleep(for: .milliseconds(100))
            partial.checkpoint(live)
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(try ResumeJournal.decode(FileSystem.readFile(path + ".journal", limit: 1 << 20)).point == durable)
        // After a process kill (same boot): the live journal is exact.
        do {
            let again = try PartialBlob(path: path, digest: Self.digest, size: size, model: "m")
            #expect(again.resume == live)
        }
        // After a reboot, what the page cache held may be gone: only the
        // durable journal is believed.
        var j = try ResumeJournal.decode(FileSystem.readFile(path + ".journal.live", limit: 1 << 20))
        j.boot = "another-boot"
        try FileSystem.writeAtomically(j.encode(), to: path + ".journal.live")
        let rebooted = try PartialBlob(path: path, digest: Self.digest, size: size, model: "m")
        #expect(rebooted.resume == durable)
    }

    @Test func aPartialWhoseJournalDoesNotMatchStartsOver() async throws {
        let dir = TempDir()
        let path = dir.sub("sha256-y-partial")
        func checkpointed(size: Int64) async throws {
            let partial = try PartialBlob(path: path, digest: Self.digest, size: size, model: "m")
            _ = [UInt8](repeating: 9, count: 4096).withUnsafeBytes { pwrite(partial.fd, $0.baseAddress, $0.count, 0) }
            partial.finish(ResumePoint(ranges: RangeSet([0..<4096]), hashState: nil))
            await partial.settled()
        }
        func reopened(size: Int64) throws -> (ResumePoint, String?, UInt8) {
            let p = try PartialBlob(path: path, digest: Self.digest, size: size, model: "m")
            var byte: UInt8 = 1
            _ = pread(p.fd, &byte, 1, 0)
            return (p.resume, p.discarded, byte)
        }
        // The manifest now gives another size for the same digest.
        try await checkpointed(size: 8192)
        var (resume, why, byte) = try reopened(size: 9000)
        #expect(resume == .empty)
        #expect(why?.contains("journal describes") == true)
        #expect(byte == 0, "old data must be gone")

        // The data file was truncated behind the journal's back.
        try await checkpointed(size: 8192)
        truncate(path, 100)
        (resume, why, byte) = try reopened(size: 8192)
        #expect(resume == .empty)
        #expect(why?.contains("data file is 100 bytes") == true)

        // Data without a journal cannot be trusted.
        try await checkpointed(size: 8192)
        unlink(path + ".journal")
        unlink(path + ".journal.live")
        (resume, why, byte) = try reopened(size: 8192)
        #expect(resume == .empty)
        #expect(why == "partial data without a readable journal")
        #expect(byte == 0)
    }

    @Test func theInventoryListsPartialsAndRefusesToDeleteOneInUse() async throws {
        let dir = TempDir()
        let store = ModelStore(root: dir.path)
        try store.prepareDirectories()
        let partial = try PartialBlob(
            path: store.partialPath(Self.digest), digest: Self.digest, size: 8192,
            model: "library/x:latest")
        partial.checkpoint(ResumePoint(ranges: RangeSet([0..<4096]), hashState: nil))
        try await Task.sleep(for: .milliseconds(200))
        var listed = store.partials()
        #expect(listed.count == 1)
        #expect(listed.first?.digest == Self.digest)
        #expect(listed.first?.completed == 4096)
        #expect(listed.first?.size == 8192)
        #expect(listed.first?.model == "library/x:latest")
        #expect(listed.first?.inUse == true)
        #expect(throws: HaulError.self) { try store.removePartial(Self.digest) }
        partial.finish(nil)
        await partial.settled()
        _ = partial
        listed = []
    }

    @Test func removingAFreePartialDeletesDataAndJournal() async throws {
        let dir = TempDir()
        let store = ModelStore(root: dir.path)
        try store.prepareDirectories()
        do {
            let partial = try PartialBlob(
                path: store.partialPath(Self.digest), digest: Self.digest, size: 8192, model: "m")
            partial.finish(ResumePoint(ranges: RangeSet([0..<10]), hashState: nil))
            await partial.settled()
        }
        #expect(store.partials().first?.inUse == false)
        try store.removePartial(Self.digest)
        #expect(store.partials().isEmpty)
        #expect(FileSystem.listDirectory(store.partialsDirectory).isEmpty)
    }

    @Test func retryDecisionsFollowTheStatus() {
        #expect(RetryPolicy.decide(status: 0, onCDN: false) == .retry)
        for status in [408, 429, 500, 502, 503, 504] {
            #expect(RetryPolicy.decide(status: status, onCDN: false) == .retry)
            #expect(RetryPolicy.decide(status: status, onCDN: true) == .retry)
        }
        for status in [400, 401, 403, 404, 410] {
            #expect(RetryPolicy.decide(status: status, onCDN: true) == .reresolve)
        }
        #expect(RetryPolicy.decide(status: 404, onCDN: false) == .notFound)
        for status in [400, 401, 403, 405, 410, 416, 451] {
            #expect(RetryPolicy.decide(status: status, onCDN: false) == .fatal)
        }
    }

    @Test func backoffGrowsWithJitterAndIsCapped() {
        #expect(RetryPolicy.backoff(attempt: 1, random: 1) == 0.5)
        #expect(RetryPolicy.backoff(attempt: 2, random: 1) == 1.0)
        #expect(RetryPolicy.backoff(attempt: 3, random: 0.5) == 1.0)
        #expect(RetryPolicy.backoff(attempt: 40, random: 1.5) == 15.0)
        let samples = (0..<200).map { _ in RetryPolicy.backoff(attempt: 2) }
        #expect(samples.min()! >= 0.5 && samples.max()! <= 1.5)
        #expect(Set(samples).count > 100, "jitter spreads retries")
    }

    @Test func retryAfterAcceptsSecondsAndHTTPDates() {
        let now = Date(timeIntervalSince1970: 1_700_000_000)  // Tue, 14 Nov 2023 22:13:20 GMT
        #expect(RetryPolicy.retryAfter("3", now: now) == 3)
        #expect(RetryPolicy.retryAfter(" 120 ", now: now) == 120)
        #expect(RetryPolicy.retryAfter("Tue, 14 Nov 2023 22:13:50 GMT", now: now) == 30)
        #expect(RetryPolicy.retryAfter("Tue, 14 Nov 2023 22:00:00 GMT", now: now) == 0)
        #expect(RetryPolicy.retryAfter("99999999999999", now: now)! > RetryPolicy.maxRetryAfter)
        #expect(RetryPolicy.retryAfter(nil, now: now) == nil)
        #expect(RetryPolicy.retryAfter("soon", now: now) == nil)
        #expect(RetryPolicy.retryAfter("-1", now: now) == nil)
    }
}
