import CShims
import Foundation
import HaulTestSupport
import Testing

@testable import HaulKit

/// The C hash frontier: the digest of a file written out of order, hashed
/// from the contiguous prefix, equals the digest of the whole file.
@Suite struct HashFrontierTests {
    static func randomBytes(_ n: Int) -> [UInt8] {
        var rng = SystemRandomNumberGenerator()
        return (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) }
    }

    /// Writes `data` into a fresh file in shuffled 7919-byte chunks, announcing
    /// the contiguous prefix after each write, and returns the hasher's digest.
    /// `direct`: the hasher reads back with O_DIRECT (in threaded mode
    /// through its read-ahead ring), at unaligned offsets, while the writes
    /// go through the page cache.
    static func hashOutOfOrder(_ data: [UInt8], threaded: Bool, direct: Bool = false, dir: TempDir) throws -> (
        Digest?, Int64
    ) {
        let path = dir.sub("blob")
        let fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0o644)
        #expect(fd >= 0)
        defer { close(fd) }
        let directFD = direct ? open(path, O_RDONLY | hl_o_direct()) : -1
        if direct { try #require(directFD >= 0, "O_DIRECT in \(path): errno \(errno)") }
        defer { if directFD >= 0 { close(directFD) } }
        let h = try #require(hl_hasher_new(fd, Int64(data.count), threaded ? 1 : 0, nil, nil, directFD))
        defer { hl_hasher_free(h) }
        let chunk = 7919
        var order = Array(stride(from: 0, to: data.count, by: chunk))
        order.shuffle()
        var written = RangeSet()
        for start in order {
            let end = min(start + chunk, data.count)
            data.withUnsafeBytes { buf in
                _ = pwrite(fd, buf.baseAddress! + start, end - start, off_t(start))
                hl_hasher_offer(h, Int64(start), buf.baseAddress! + start, end - start)
            }
            written.insert(Int64(start)..<Int64(end))
            hl_hasher_advance(h, written.contiguousPrefix)
            if !threaded { #expect(hl_hasher_step(h, 1 << 16) == 0) }
        }
        if !threaded { #expect(hl_hasher_step(h, Int.max) == 0) }
        let deadline = Date().addingTimeInterval(10)
        while hl_hasher_hashed(h) < Int64(data.count) && Date() < deadline { usleep(1000) }
        var out = [UInt8](repeating: 0, count: 32)
        let ok = hl_hasher_digest(h, &out) == 0
        return (ok ? Digest(bytes: out) : nil, hl_hasher_hashed(h))
    }

    @Test(arguments: [(true, false), (false, false), (true, true), (false, true)])
    func outOfOrderWritesHashToTheWholeFileDigest(threaded: Bool, direct: Bool) throws {
        let dir = TempDir()
        let data = Self.randomBytes(3_000_017)
        let (digest, hashed) = try Self.hashOutOfOrder(data, threaded: threaded, direct: direct, dir: dir)
        #expect(hashed == Int64(data.count))
        #expect(digest == Digest(bytes: SHA256.hash(data)))
    }

    @Test func noDigestBeforeTheLastByte() throws {
        let dir = TempDir()
        let fd = open(dir.sub("f"), O_RDWR | O_CREAT, 0o644)
        defer { close(fd) }
        let h = try #require(hl_hasher_new(fd, 100, 0, nil, nil, -1))
        defer { hl_hasher_free(h) }
        var out = [UInt8](repeating: 0, count: 32)
        #expect(hl_hasher_digest(h, &out) == -1)
    }

    /// `direct`: the resumed hasher reads back with O_DIRECT, from an
    /// offset that is not block-aligned.
    @Test(arguments: [false, true])
    func exportedStateResumesToTheSameDigest(direct: Bool) throws {
        let dir = TempDir()
        let data = Self.randomBytes(1_000_003)
        let path = dir.sub("f")
        FileManager.default.createFile(atPath: path, contents: Data(data))
        let fd = open(path, O_RDONLY)
        defer { close(fd) }
        // Hash an odd-sized prefix (partial final block), export, restore.
        let first = try #require(hl_hasher_new(fd, Int64(data.count), 0, nil, nil, -1))
        hl_hasher_advance(first, 123_457)
        #expect(hl_hasher_step(first, Int.max) == 0)
        var state = [UInt8](repeating: 0, count: Int(HL_SHA256_STATE_SIZE))
        #expect(hl_hasher_export(first, &state) == 123_457)
        hl_hasher_free(first)
        #expect(hl_sha256_state_offset(state) == 123_457)
        #expect(Array(state[0..<4]) == Array("sha\u{3}".utf8))

        let directFD = direct ? open(path, O_RDONLY | hl_o_direct()) : -1
        defer { if directFD >= 0 { close(directFD) } }
        let resumed = try #require(hl_hasher_new(fd, Int64(data.count), 1, state, nil, directFD))
        defer { hl_hasher_free(resumed) }
        #expect(hl_hasher_hashed(resumed) == 123_457)
        hl_hasher_advance(resumed, Int64(data.count))
        let deadline = Date().addingTimeInterval(10)
        while hl_hasher_hashed(resumed) < Int64(data.count) && Date() < deadline { usleep(1000) }
        var out = [UInt8](repeating: 0, count: 32)
        #expect(hl_hasher_digest(resumed, &out) == 0)
        #expect(Digest(bytes: out) == Digest(bytes: SHA256.hash(data)))
    }

    @Test func malformedStatesAreRefused() throws {
        var state = [UInt8](repeating: 0, count: Int(HL_SHA256_STATE_SIZE))
        #expect(hl_hasher_new(-1, 10, 0, state, nil, -1) == nil)
        state.replaceSubrange(0..<4, with: Array("sha\u{3}".utf8))
        state[107] = 50  // offset 50 > size 10
        #expect(hl_hasher_new(-1, 10, 0, state, nil, -1) == nil)
    }

    @Test(
        arguments: [
            ("bytes 0-99/1000", 0, 99, 1000),
            ("bytes 5-5/*", 5, 5, -1),
            ("  BYTES 10-19/20\r\n", 10, 19, 20)
        ] as [(String, Int64, Int64, Int64)])
    func contentRangeParses(_ text: String, _ first: Int64, _ last: Int64, _ total: Int64) {
        var a: Int64 = 0
        var b: Int64 = 0
        var t: Int64 = 0
        #expect(hl_parse_content_range(text, &a, &b, &t) == 0)
        #expect((a, b, t) == (first, last, total))
    }

    @Test(arguments: [
        "", "bytes", "bytes 1-0/5", "bytes 0-5/5", "bytes -1-5/10", "bytes 0-5", "items 0-5/10",
        "bytes 0-5/10x", "bytes 99999999999999999999-1/2", "bytes */10", "bytes 0 - 5/10"
    ])
    func contentRangeRejects(_ text: String) {
        var a: Int64 = 0
        var b: Int64 = 0
        var t: Int64 = 0
        #expect(hl_parse_content_range(text, &a, &b, &t) == -1)
    }

    /// The loop waits in curl_multi_poll without a timeout for the hasher:
    /// the hashing thread wakes it when the digest is final.
    @Test func theHashingThreadWakesTheLoopWhenTheDigestIsFinal() throws {
        hl_global_init()
        let multi = try #require(curl_multi_init())
        defer { curl_multi_cleanup(multi) }
        let data = Self.randomBytes(8 << 20)
        let fd = ResumeTests.memfd(data)
        defer { close(fd) }
        let h = try #require(hl_hasher_new(fd, Int64(data.count), 1, nil, multi, -1))
        defer { hl_hasher_free(h) }
        hl_hasher_advance(h, Int64(data.count))
        // A minute's timeout: only the wakeup can end this wait early.
        let started = Date()
        while hl_hasher_hashed(h) < Int64(data.count) && Date().timeIntervalSince(started) < 60 {
            _ = curl_multi_poll(multi, nil, 0, 60_000, nil)
        }
        #expect(Date().timeIntervalSince(started) < 30, "the poll was not woken")
        var digest = [UInt8](repeating: 0, count: 32)
        #expect(hl_hasher_digest(h, &digest) == 0)
        #expect(Digest(bytes: digest) == Digest(bytes: SHA256.hash(data)))
    }
}
