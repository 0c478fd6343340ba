import Testing

@testable import HaulKit

/// The decisions of one blob download, replayed against a scripted
/// transport: each test runs in microseconds and opens no socket.
@Suite struct BlobPolicyTests {
    typealias T = ScriptedTransport
    let mib: Int64 = 1 << 20

    @Test func theFirstRangeResolvesAloneThenRangesGoToTheCDNWithoutCredentials() throws {
        var t = T(size: 40 * mib)
        let first = t.fill()
        #expect(first.count == 1, "others wait until the registry answered")
        let r = try #require(first.first)
        #expect(r.url == T.registry && r.sendCredentials && !r.followRedirects && r.acceptFull)
        t.end(r, .redirect(r, to: T.cdn))
        let ranges = t.fill()
        #expect(ranges.count == 4)
        #expect(ranges.allSatisfy { $0.url == T.cdn && !$0.sendCredentials && $0.followRedirects })
        #expect(ranges.dropFirst().allSatisfy { !$0.acceptFull }, "only the first contact may take a whole-blob 200")
        #expect(ranges.first?.range.lowerBound == 0, "the redirected range is asked again, first")
        t.drain()
        #expect(t.failure == nil && t.policy.isWritten)
        #expect(t.started.dropFirst().allSatisfy { $0.url == T.cdn })
    }

    /// The first range to the CDN goes alone; the others start once it is
    /// answered, when its TLS session is in curl's shared cache to resume
    /// (16 connections opened at once made 16 full handshakes).
    @Test func theOthersWaitForTheFirstContactWithTheCDN() throws {
        var t = T(size: 40 * mib)
        t.answersFirstContact = false
        let r = try #require(t.fill().first)
        t.end(r, .redirect(r, to: T.cdn))
        let opening = t.fill()
        #expect(opening.count == 1 && opening.first?.url == T.cdn)
        #expect(t.fill().isEmpty, "nothing else before the CDN answered")
        t.receive(opening[0], bytes: 0)
        #expect(t.fill().count == 3)
    }

    @Test func aRedirectWithinTheRegistryKeepsResolvingThereWithCredentials() throws {
        var t = T(size: 8 * mib)
        let r = try #require(t.fill().first)
        let moved = "https://registry.test/v2/other/path"
        t.end(r, .redirect(r, to: moved))
        let again = try #require(t.fill().first)
        #expect(again.url == moved && again.sendCredentials && !again.followRedirects)
        #expect(t.fill().isEmpty, "still resolving")
    }

    /// Plain http is followed only behind a plain http registry: an https
    /// registry's blob never continues over http, with or without
    /// --insecure (Ollama #18512), not even after an https CDN hop.
    @Test func aDowngradeToPlainHTTPIsRefusedBehindAnHTTPSRegistry() throws {
        var t = T(size: 8 * mib)
        let r = try #require(t.fill().first)
        t.end(r, .redirect(r, to: "http://cdn.test/blob"))
        guard case .network(_, let message)? = t.failure else {
            Issue.record("no failure")
            return
        }
        #expect(
            message.contains("refusing redirect from https to http")
                && message.contains("--insecure does not change that"))

        var hop = T(size: 8 * mib)
        let first = try #require(hop.fill().first)
        hop.end(first, .redirect(first, to: "https://cdn.test/signed"))
        let second = try #require(hop.fill().first)
        hop.end(second, .redirect(second, to: "http://cdn.test/plain"))
        #expect(hop.failure != nil, "an https registry's chain may not end on http")

        var plain = T(size: 8 * mib, url: "http://registry.test/v2/library/m/blobs/sha256:00")
        let p = try #require(plain.fill().first)
        plain.end(p, .redirect(p, to: "http://cdn.test/blob"))
        #expect(plain.failure == nil && plain.fill().first?.url == "http://cdn.test/blob")
    }

    @Test func redirectLoopsEnd() throws {
        var t = T(size: 8 * mib)
        for i in 0...SourceResolver.maxRedirects {
            guard let r = t.fill().first else { break }
            t.end(r, .redirect(r, to: "https://registry.test/hop/\(i)"))
        }
        guard case .network(_, let message)? = t.failure else {
            Issue.record("no failure")
            return
        }
        #expect(message.contains("maximum redirects exceeded"))
    }

    @Test func aResumedBlobFetchesOnlyItsGaps() {
        let held = RangeSet([0..<(10 * mib), (20 * mib)..<(30 * mib)])
        var t = T(size: 40 * mib, written: held)
        let first = t.fill()
        #expect(first.first?.range.lowerBound == 10 * mib)
        #expect(first.first?.acceptFull == false, "a 200 would rewrite bytes already held")
        t.end(first[0], .redirect(first[0], to: T.cdn))
        t.drain()
        var fetched = RangeSet()
        for r in t.started.dropFirst() { fetched.insert(r.range) }
        #expect(fetched.ranges == [(10 * mib)..<(20 * mib), (30 * mib)..<(40 * mib)])
        #expect(t.policy.queue.written.ranges == [0..<(40 * mib)])
    }

    @Test func aServerThatIgnoresRangeBecomesOneStreamFromTheStart() throws {
        var t = T(size: 40 * mib)
        let r = try #require(t.fill().first)
        t.receive(r, bytes: 40 * mib, status: 200)
        #expect(t.policy.resolver.isSingleStream)
        #expect(t.fill().isEmpty, "a single stream brings every byte")
        t.end(
            r,
            .done(
                PieceRequest(
                    transfer: r.transfer, range: r.range.lowerBound..<(40 * mib), url: r.url,
                    acceptFull: true, sendCredentials: true, followRedirects: false), status: 200))
        #expect(t.failure == nil && t.policy.isWritten)
    }

    @Test func a200AfterRangesCancelsTheOthersAndRestartsFromTheSealedPrefix() throws {
        var t = T(size: 40 * mib)
        let r = try #require(t.fill().first)
        t.end(r, .redirect(r, to: T.cdn))
        let ranges = t.fill(limit: 5)
        // The first two ranges land and the third is under way, so the
        // sealed prefix ends inside it; the fourth holds bytes above the
        // prefix when the fifth gets a 200.
        t.complete(ranges[0])
        t.complete(ranges[1])
        t.receive(ranges[2], bytes: mib / 2)
        t.receive(ranges[3], bytes: mib / 2)
        let sealed = ranges[2].range.lowerBound + mib / 2
        var ignored = PieceOutcome.refused(ranges[4], status: 200)
        ignored.why = "cdn.test answered 200"
        t.end(ranges[4], ignored)
        #expect(Set(t.cancelled) == Set([ranges[2].transfer, ranges[3].transfer]) && t.running.isEmpty)
        #expect(t.policy.queue.written.ranges == [0..<sealed], "bytes above the prefix are fetched again")
        let stream = try #require(t.fill().first)
        #expect(stream.range == sealed..<(40 * mib) && stream.acceptFull && stream.url == T.cdn)
        #expect(t.fill().isEmpty)
    }

    @Test func anExpiredCDNURLGoesBackToTheRegistryOnceForAllRangesOnIt() throws {
        var t = T(size: 40 * mib)
        let r = try #require(t.fill().first)
        t.end(r, .redirect(r, to: T.cdn))
        let ranges = t.fill()
        t.end(ranges[0], .refused(ranges[0], status: 403))
        t.end(ranges[1], .refused(ranges[1], status: 403))
        let again = t.fill()
        #expect(again.count == 1 && again[0].url == T.registry && again[0].sendCredentials)
        #expect(again[0].range.lowerBound == 0, "the lowest lost range first")
        t.end(again[0], .redirect(again[0], to: T.cdn + "2"))
        t.drain()
        #expect(t.failure == nil && t.policy.isWritten)
        #expect(t.policy.failures == 0, "an expiry is not a failure")
    }

    @Test func freshURLsThatKeepFailingEndTheBlob() throws {
        var t = T(size: 8 * mib, connections: 1)
        for _ in 0...SourceResolver.maxReresolves {
            let r = try #require(t.fill(limit: 1).first)
            t.end(r, .redirect(r, to: T.cdn))
            let ranged = try #require(t.fill(limit: 1).first)
            t.end(ranged, .refused(ranged, status: 403))
        }
        guard case .retriesExhausted(_, let last)? = t.failure else {
            Issue.record("no failure")
            return
        }
        #expect(last.contains("fresh download URLs keep failing"))
    }

    @Test func retriesBackOffAndEndAfterTheLimitWithoutProgress() throws {
        // One piece: nothing else to start while it backs off.
        var t = T(size: mib, connections: 1) { $0.retryLimit = 3 }
        var delays: [Double] = []
        while t.failure == nil {
            let r = try #require(t.fill(limit: 1).first)
            let at = t.now
            t.end(r, .refused(r, status: 503))
            guard t.failure == nil else { break }
            #expect(t.fill(limit: 1).isEmpty, "not before its backoff")
            let due = try #require(t.policy.queue.earliestRetry)
            delays.append(due - at)
            t.now = due
        }
        #expect(delays == [0.5, 1.0, 2.0])
        guard case .retriesExhausted(_, let last)? = t.failure else {
            Issue.record("no failure")
            return
        }
        #expect(last == "server answered 503")
    }

    @Test func refusalsWhileOtherRangesReceiveAreWaitedOutNeverFailed() throws {
        // A CDN that serves one connection and answers 503 to the second,
        // many times over (nginx's limit_conn: no Retry-After): far more
        // refusals than the retry limit and the failure budget allow, yet
        // the blob ends complete, each refusal waiting longer, to 10 s.
        var t = T(size: 64 * mib, connections: 2) {
            $0.retryLimit = 2
            $0.failureBudget = 3
        }
        var requests = t.fill(limit: 2)
        let served = try #require(requests.first)
        t.receive(served, bytes: mib)
        var delays: [Double] = []
        for _ in 0..<20 {
            let refused = try #require(requests.count > 1 ? requests[1] : t.fill(limit: 2).first)
            t.end(refused, .refused(refused, status: 503))
            #expect(t.failure == nil)
            let due = try #require(t.policy.queue.earliestRetry)
            delays.append(due - t.now)
            t.now = due
            requests = []
        }
        #expect(t.policy.failures == 0)
        #expect(delays.last.map { (5...15).contains($0) } == true, "waits grow to 10 s while nothing ends: \(delays)")
        // Refused once more; then the served range ends: the server has a
        // connection free, and the refused range is due at once.
        let again = try #require(t.fill(limit: 2).first)
        t.end(again, .refused(again, status: 503))
        #expect(try #require(t.policy.queue.earliestRetry) > t.now + 1)
        t.complete(served)
        #expect(t.policy.queue.earliestRetry == t.now)
        t.drain(limit: 2)
        #expect(t.failure == nil && t.policy.queue.isComplete, "every byte of the blob arrives")

        // With nothing else receiving, refusals are failures again.
        var alone = T(size: mib, connections: 1) { $0.retryLimit = 2 }
        while alone.failure == nil {
            let r = try #require(alone.fill(limit: 1).first)
            alone.end(r, .refused(r, status: 503))
            if let due = alone.policy.queue.earliestRetry { alone.now = due }
        }
        guard case .retriesExhausted? = alone.failure else {
            Issue.record("no failure")
            return
        }
    }

    @Test func progressResetsTheAttemptsButNotTheFailureBudget() throws {
        var t = T(size: 64 * mib, connections: 1) {
            $0.retryLimit = 2
            $0.failureBudget = 5
        }
        var received: Int64 = 0
        while t.failure == nil {
            let r = try #require(t.fill(limit: 1).first)
            #expect(r.range.lowerBound == received, "resumes where the reset left off")
            t.receive(r, bytes: 1024)
            t.end(r, .reset(r, received: 1024))
            received += 1024
            if t.failure == nil { #expect(t.policy.queue.earliestRetry == t.now, "progress: no backoff") }
        }
        #expect(t.policy.failures == 6)
        guard case .retriesExhausted? = t.failure else {
            Issue.record("no failure")
            return
        }
    }

    @Test func retryAfterIsHonouredAndAnAbsurdOneIsAnError() throws {
        var t = T(size: 4 * mib, connections: 1)
        var r = try #require(t.fill(limit: 1).first)
        t.end(r, .refused(r, status: 429, retryAfter: "7"))
        #expect(t.policy.queue.earliestRetry == 7)
        t.now = 7
        r = try #require(t.fill(limit: 1).first)
        t.end(r, .refused(r, status: 429, retryAfter: "3600"))
        guard case .retriesExhausted(_, let last)? = t.failure else {
            Issue.record("no failure")
            return
        }
        #expect(last.contains("Retry-After: 3600 s"))
    }

    @Test func answersRetryingCannotFixEndTheBlobAtOnce() throws {
        var t = T(size: 4 * mib)
        var r = try #require(t.fill().first)
        t.end(r, .refused(r, status: 404))
        #expect(t.failure == .blobNotFound(T.digest))

        t = T(size: 4 * mib)
        r = try #require(t.fill().first)
        t.end(r, .refused(r, status: 401, challenge: "Bearer realm=\"x\""))
        #expect(t.failure == .blobUnauthorized(challenge: "Bearer realm=\"x\""))

        t = T(size: 4 * mib)
        r = try #require(t.fill().first)
        var wrongSize = PieceOutcome.refused(r, status: 206)
        wrongSize.verdict = .badContentRange
        wrongSize.servedSize = 5 * mib
        t.end(r, wrongSize)
        guard case .network(_, let message)? = t.failure else {
            Issue.record("no failure")
            return
        }
        #expect(message.contains("the server's blob is \(5 * mib) bytes, the manifest says \(4 * mib)"))
    }

    @Test func aFailureCancelsEveryRunningRange() throws {
        var t = T(size: 40 * mib)
        let r = try #require(t.fill().first)
        t.end(r, .redirect(r, to: T.cdn))
        let ranges = t.fill()
        var broken = PieceOutcome.reset(ranges[0], received: 0)
        broken.verdict = .writeFailed
        broken.writeErrno = 28
        t.end(ranges[0], broken)
        #expect(t.failure == .io(operation: "write", path: "/models/blob", errno: 28))
        #expect(Set(t.cancelled) == Set(ranges.dropFirst().map(\.transfer)))
        #expect(t.policy.next(now: t.now) == nil)
    }

    @Test func aSplitOffTailIsFetchedNextAndTheWholeBlobExactlyOnce() throws {
        var t = T(size: 40 * mib, connections: 2)
        let r = try #require(t.fill(limit: 1).first)
        t.end(r, .redirect(r, to: T.cdn))
        let ranges = t.fill(limit: 2)
        // The loop lowered the first range's stop: the rest is queued first.
        let cut = ranges[0].range.lowerBound + mib
        t.policy.splitOff(ranges[0].transfer, cut..<ranges[0].range.upperBound)
        t.receive(ranges[0], bytes: mib)
        t.end(ranges[0], PieceOutcome(url: T.cdn, start: 0, offset: cut, stopAt: cut, status: 206, verdict: .stopped))
        let next = try #require(t.fill(limit: 2).first)
        #expect(next.range == cut..<ranges[0].range.upperBound)
        t.drain(limit: 2)
        #expect(t.policy.isWritten && t.failure == nil)
        let total =
            t.started.dropFirst().reduce(Int64(0)) { $0 + Int64($1.range.count) } - (ranges[0].range.upperBound - cut)
        #expect(total == 40 * mib, "no byte asked twice")
    }

    @Test func anAbandonedRangeCountsAnAttemptOnlyWithoutProgress() throws {
        var t = T(size: 40 * mib)
        let r = try #require(t.fill().first)
        t.end(r, .redirect(r, to: T.cdn))
        let ranges = t.fill()
        t.receive(ranges[1], bytes: 4096)
        t.apply(
            t.policy.abandon(
                ranges[1].transfer, offset: ranges[1].range.lowerBound + 4096,
                stopAt: ranges[1].range.upperBound, why: "silent"))
        t.apply(
            t.policy.abandon(
                ranges[2].transfer, offset: ranges[2].range.lowerBound,
                stopAt: ranges[2].range.upperBound, why: "silent"))
        #expect(t.cancelled == [ranges[1].transfer, ranges[2].transfer])
        #expect(t.policy.queue.pending.map(\.attempts) == [0, 1])
        #expect(t.policy.queue.pending.first?.range.lowerBound == ranges[1].range.lowerBound + 4096)
    }

    @Test func aColdPullThroughCacheIsGivenTimeToStoreTheBlobInsteadOfStreamingItTwice() throws {
        var t = T(size: 40 * mib, mirror: true)
        var r = try #require(t.fill().first)
        #expect(!r.acceptFull, "a mirror's whole-blob answer is not taken at first")
        // Cold: the whole blob instead of the range; Haul hangs up.
        var cold = PieceOutcome.refused(r, status: 200)
        cold.why = "mirror answered 200"
        t.end(r, cold)
        #expect(t.failure == nil && t.fill().isEmpty, "not before the backoff")
        var waits: [Double] = []
        while t.now < 40 {
            let due = try #require(t.policy.queue.earliestRetry)
            waits.append(due - t.now)
            t.now = due
            r = try #require(t.fill().first)
            guard !r.acceptFull else { break }
            t.end(r, cold)
        }
        #expect(waits.prefix(5) == [0.5, 1, 2, 4, 5])
        // After 30 s it is taken for a server that ignores Range.
        #expect(r.acceptFull && t.now >= 30)

        // A cache that turned warm answers ranges: parallel from then on.
        var warm = T(size: 40 * mib, mirror: true)
        let first = try #require(warm.fill().first)
        warm.end(first, cold)
        warm.now = try #require(warm.policy.queue.earliestRetry)
        let again = try #require(warm.fill().first)
        warm.receive(again, bytes: mib)
        #expect(warm.fill().count == 3, "ranges in parallel once it answers 206")
        #expect(warm.policy.resolver.isSplittable)
    }
}
