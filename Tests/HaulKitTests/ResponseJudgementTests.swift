import CShims
import Foundation
import HaulTestSupport
import Testing

/// The rule that guards the hash frontier, `hl_judge_response`: which
/// responses to a ranged GET may be written into a blob. Pure C, so its
/// table is checked here without a server.
@Suite struct ResponseJudgementTests {
    /// bytes 1000-1999 of a 10,000-byte blob.
    static let request = hl_range_request(start: 1000, end: 2000, total: 10_000, accept_full: 0)
    static let fromZero = hl_range_request(start: 0, end: 2000, total: 10_000, accept_full: 1)
    static let acceptFull = hl_range_request(start: 1000, end: 2000, total: 10_000, accept_full: 1)

    static func judge(
        _ status: Int, _ contentRange: String?, length: Int64 = -1,
        _ request: hl_range_request = request
    ) -> hl_judgement {
        if let contentRange { return contentRange.withCString { hl_judge_response(status, $0, length, request) } }
        return hl_judge_response(status, nil, length, request)
    }

    @Test(
        arguments: [
            ("bytes 1000-1999/10000", HL_JUDGED_RANGE),
            ("bytes 1000-1999/*", HL_JUDGED_RANGE),
            ("BYTES  1000-1999/10000\r\n", HL_JUDGED_RANGE),
            // Another range, a shorter or longer one, another file size.
            ("bytes 0-999/10000", HL_JUDGED_BAD_CONTENT_RANGE),
            ("bytes 1000-1998/10000", HL_JUDGED_BAD_CONTENT_RANGE),
            ("bytes 1000-2000/10000", HL_JUDGED_BAD_CONTENT_RANGE),
            ("bytes 1001-1999/10000", HL_JUDGED_BAD_CONTENT_RANGE),
            ("bytes 1000-1999/9999", HL_JUDGED_BAD_CONTENT_RANGE),
            ("bytes 1000-1999/20000", HL_JUDGED_BAD_CONTENT_RANGE),
            // Malformed: multipart, no total, garbage.
            ("bytes 1000-1999", HL_JUDGED_BAD_CONTENT_RANGE),
            ("bytes */10000", HL_JUDGED_BAD_CONTENT_RANGE),
            ("bytes 1000-1999/10000, 3000-3999/10000", HL_JUDGED_BAD_CONTENT_RANGE),
            ("", HL_JUDGED_BAD_CONTENT_RANGE)
        ] as [(String, hl_judgement)])
    func a206IsTakenOnlyWithTheRequestedRange(_ contentRange: String, _ expected: hl_judgement) {
        #expect(Self.judge(206, contentRange) == expected)
    }

    @Test func a206WithoutContentRangeIsRefused() {
        #expect(Self.judge(206, nil) == HL_JUDGED_BAD_CONTENT_RANGE)
        // Even when a 200 would be acceptable.
        #expect(Self.judge(206, nil, Self.acceptFull) == HL_JUDGED_BAD_CONTENT_RANGE)
    }

    /// A server that ignores Range sends the whole blob with a 200: taken
    /// only where the caller allows it, and only when its length, if
    /// announced, is the blob's.
    @Test func a200IsTakenOnlyWhenAllowedAndWhole() {
        #expect(Self.judge(200, nil) == HL_JUDGED_BAD_STATUS)
        #expect(Self.judge(200, nil, length: 10_000) == HL_JUDGED_BAD_STATUS)
        #expect(Self.judge(200, nil, Self.acceptFull) == HL_JUDGED_WHOLE)
        #expect(Self.judge(200, nil, length: 10_000, Self.acceptFull) == HL_JUDGED_WHOLE)
        #expect(Self.judge(200, nil, length: 0, Self.fromZero) == HL_JUDGED_BAD_LENGTH)
        #expect(Self.judge(200, nil, length: 9_999, Self.acceptFull) == HL_JUDGED_BAD_LENGTH)
        #expect(Self.judge(200, nil, length: 10_001, Self.fromZero) == HL_JUDGED_BAD_LENGTH)
        // A Content-Range on a 200 changes nothing.
        #expect(Self.judge(200, "bytes 0-1/2", Self.acceptFull) == HL_JUDGED_WHOLE)
    }

    /// Redirects (curl hands the sink only the body of a redirect it does
    /// not follow), errors, throttles and odd successes are never written.
    @Test(arguments: [0, 100, 201, 204, 301, 302, 303, 307, 308, 400, 401, 403, 404, 416, 429, 500, 502, 503, 599])
    func otherStatusesAreRefused(_ status: Int) {
        #expect(Self.judge(status, "bytes 1000-1999/10000") == HL_JUDGED_BAD_STATUS)
        #expect(Self.judge(status, "bytes 1000-1999/10000", length: 10_000, Self.acceptFull) == HL_JUDGED_BAD_STATUS)
    }

    /// A sink fed directly (what curl's callback does after the judgement):
    /// a split never cuts below bytes it has received but not yet written
    /// (its page-alignment carry), because they would land in the part
    /// handed to another connection.
    @Test func aSplitStopsAfterTheCarriedBytes() throws {
        let dir = TempDir()
        let fd = open(dir.sub("blob"), O_RDWR | O_CREAT | O_EXCL, 0o600)
        try #require(fd >= 0)
        defer { close(fd) }
        let sink = try #require(
            hl_sink_new(fd, hl_range_request(start: 0, end: 1 << 20, total: 1 << 20, accept_full: 0), nil))
        defer { hl_sink_free(sink) }
        let bytes = [CChar](repeating: 7, count: 8292)
        #expect(hl_sink_feed(sink, bytes, bytes.count) == bytes.count)
        var state = hl_sink_state()
        hl_sink_snapshot(sink, &state)
        #expect((state.offset, state.received) == (8192, 8292), "written to the last page boundary, the rest carried")
        #expect(hl_sink_lower_stop(sink, 65536) == 65536)
        #expect(hl_sink_lower_stop(sink, 4096) == 8292)
        // Never raised.
        #expect(hl_sink_lower_stop(sink, 1 << 19) == 8292)
    }

    /// Bytes past where a range stops are refused: past the request's end
    /// as overlong, past a lowered stop as a split; either way the bytes up
    /// to the stop are on disk and none beyond.
    @Test func bytesPastTheStopAreNotWritten() throws {
        let dir = TempDir()
        for lowered in [false, true] {
            let path = dir.sub("blob-\(lowered)")
            let fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0o600)
            try #require(fd >= 0)
            defer { close(fd) }
            let sink = try #require(
                hl_sink_new(fd, hl_range_request(start: 0, end: 10_000, total: 10_000, accept_full: 0), nil))
            defer { hl_sink_free(sink) }
            if lowered { #expect(hl_sink_lower_stop(sink, 6000) == 6000) }
            let bytes = [CChar](repeating: 1, count: 12_000)
            #expect(hl_sink_feed(sink, bytes, bytes.count) == 0, "aborts the transfer")
            var state = hl_sink_state()
            hl_sink_snapshot(sink, &state)
            #expect(Int(state.verdict) == Int(lowered ? HL_SINK_STOPPED : HL_SINK_OVERLONG))
            #expect(state.offset == (lowered ? 6000 : 10_000))
            var info = stat()
            #expect(fstat(fd, &info) == 0)
            #expect(info.st_size == (lowered ? 6000 : 10_000))
        }
    }
}
