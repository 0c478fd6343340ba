import Foundation
internal import CShims
#if canImport(Glibc)
import Glibc
#endif

/// The state of one blob download, owned by the loop thread: which ranges
/// are on disk, which are waiting, which are in flight, where the blob is
/// served from, its hash frontier, and when to checkpoint all that.
final class BlobDownload {
    enum Source {
        /// The first piece asks the registry; it either serves the blob itself
        /// or redirects to a CDN.
        case unresolved
        case resolving
        /// Ranges go to this URL.
        case resolved(String)
        /// The server ignores Range: one stream of the whole blob.
        case singleStream(String)
    }

    struct Piece {
        var range: Range<Int64>
        var attempts = 0
        var notBefore = 0.0
    }

    let id: UInt64
    let job: BlobJob
    let events: AsyncStream<BlobEvent>.Continuation
    let hasher: Hasher
    private(set) var written = RangeSet()
    /// Ranges to fetch again (retries, split-off parts), in offset order.
    private(set) var pending: [Piece] = []
    /// Ranges not handed to any connection yet, in offset order: the gaps
    /// a resumed download still misses, or the whole blob.
    private var unassigned: [Range<Int64>]
    private let connections: Int
    private let maxPiece: Int64
    private let minPiece: Int64
    private(set) var active: [Transfer] = []
    private(set) var source: Source = .unresolved
    /// The registry URL being resolved (changes on same-host redirects).
    private var registryURL: String
    private var redirects = 0
    /// Fresh direct URLs fetched after the previous one stopped working.
    private var reresolves = 0
    /// Failed transfers of this blob, progress or not: the budget that ends
    /// a pull that keeps failing in new ways.
    private var failures = 0
    /// Where hashing started (a resumed prefix is never hashed again).
    let resumedHashed: Int64
    private var checkpointed: (bytes: Int64, at: Double)
    private var lastEmit = -1.0
    private var emitted: (written: Int64, hashed: Int64) = (-1, -1)
    private(set) var isDone = false

    init(id: UInt64, job: BlobJob, events: AsyncStream<BlobEvent>.Continuation, hasher: Hasher,
         config: EngineConfiguration) {
        self.id = id
        self.job = job
        self.events = events
        self.hasher = hasher
        self.registryURL = job.url
        self.connections = config.connections
        self.maxPiece = config.maxPieceSize
        self.minPiece = config.minCutSize
        self.written = job.resume.ranges
        self.unassigned = job.resume.ranges.gaps(in: 0..<job.size)
        self.resumedHashed = hasher.hashed
        self.checkpointed = (job.resume.ranges.count, MonotonicClock.now())
        hasher.advance(to: written.contiguousPrefix)
    }

    var hasReadyWork: Bool {
        guard !isDone, !pending.isEmpty || !unassigned.isEmpty else { return false }
        switch source {
        case .resolving: return false
        case .singleStream: return active.isEmpty
        case .unresolved, .resolved: return true
        }
    }

    var earliestPending: Double? { pending.map(\.notBefore).min() }

    /// The next range to fetch: a retry or split-off part whose backoff has
    /// passed, else a new piece cut from the unassigned tail.
    private func takePiece(now: Double) -> Piece? {
        if let index = pending.firstIndex(where: { $0.notBefore <= now }) {
            return pending.remove(at: index)
        }
        guard let gap = unassigned.first else { return nil }
        let remaining = unassigned.reduce(Int64(0)) { $0 + Int64($1.count) }
        var size = min(Int64(gap.count), SplitPolicy.nextPieceSize(remaining: remaining, connections: connections,
                                                                   maxPiece: maxPiece, minPiece: minPiece))
        if Int64(gap.count) - size < minPiece / 2 { size = Int64(gap.count) }
        let piece = gap.lowerBound..<gap.lowerBound + size
        if piece == gap { unassigned.removeFirst() } else { unassigned[0] = piece.upperBound..<gap.upperBound }
        return Piece(range: piece)
    }

    /// Starts the next piece, if the source allows.
    func startNext(now: Double, loop: EventLoop) -> Bool {
        guard hasReadyWork, let piece = takePiece(now: now) else { return false }
        let url: String, resolving: Bool
        switch source {
        case .unresolved: (url, resolving) = (registryURL, true)
        case .resolved(let u): (url, resolving) = (u, false)
        case .singleStream(let u): (url, resolving) = (u, false)
        case .resolving: return false
        }
        // A 200 carries the whole blob; the sink drops what precedes the
        // piece and writes the rest. That is only safe when the rest is all
        // hole: nothing held from the piece's start on, no other transfer.
        let single: Bool
        if case .singleStream = source { single = true } else { single = false }
        let start = piece.range.lowerBound
        let acceptFull = (resolving || single) && active.isEmpty
            && written.count == start && written.contiguousPrefix == start
        // The registry's credentials go to the registry's own origin (also
        // after it redirected to another path of itself), never elsewhere.
        let onRegistry = resolving || Self.sameOrigin(url, job.url)
        let t: Transfer
        do {
            t = try loop.startPiece(blob: self, url: url, range: piece.range, acceptFull: acceptFull,
                                    headers: onRegistry ? job.registryHeaders : [],
                                    followRedirects: !resolving, now: now)
        } catch {
            requeue(piece)
            fail(error)
            return false
        }
        t.resolving = resolving
        t.attempts = piece.attempts
        DebugTrace.log("\(job.digest.short) start \(piece.range) resolving=\(resolving)")
        if resolving { source = .resolving }
        active.append(t)
        return true
    }

    static func sameOrigin(_ a: String, _ b: String) -> Bool {
        guard let x = URLParts(a), let y = URLParts(b) else { return false }
        return x.sameOrigin(y)
    }

    /// Records bytes written since the last call and feeds the hash frontier.
    func sync() {
        for t in active {
            let offset = t.sink.offset
            if offset > t.synced {
                written.insert(t.synced..<offset)
                t.synced = offset
            }
            // The first piece settles the source as soon as its response is
            // accepted, so the other pieces need not wait for its last byte.
            if t.resolving, t.sink.checked, t.sink.verdict == .accepted {
                t.resolving = false
                source = t.status == 200 ? .singleStream(t.url) : .resolved(t.url)
                if case .singleStream = source {
                    pending.removeAll()
                    unassigned.removeAll()
                }
            }
        }
        hasher.advance(to: written.contiguousPrefix)
    }

    /// The state to resume from if the process died now.
    func snapshot() -> ResumePoint {
        ResumePoint(ranges: written, hashState: hasher.export())
    }

    /// Hands a checkpoint to the journal writer every `checkpointBytes` of
    /// new data or `checkpointInterval` seconds, whichever comes first, so a
    /// crash loses little. The writer coalesces, so a slow disk only makes
    /// checkpoints sparser, never stalls the loop.
    func checkpointIfDue(now: Double, config: EngineConfiguration) {
        guard !isDone else { return }
        let bytes = written.count
        guard bytes > checkpointed.bytes else { return }
        guard bytes - checkpointed.bytes >= config.checkpointBytes || now - checkpointed.at >= config.checkpointInterval
        else { return }
        checkpointed = (bytes, now)
        job.checkpoints.checkpoint(snapshot())
    }

    /// Handles the end of one of this blob's transfers (already removed from
    /// the multi handle, not yet closed).
    func transferEnded(_ t: Transfer, code: CURLcode, now: Double, config: EngineConfiguration) {
        sync()
        guard let index = active.firstIndex(where: { $0 === t }) else { return }
        active.remove(at: index)
        guard !isDone else { return }
        let s = t.sink
        let status = t.status
        let remainder = s.offset..<max(s.offset, s.stopAt)
        let wasResolving = t.resolving
        if wasResolving { source = .unresolved }
        // A URL that still delivers has not expired: expiry counts restart.
        if s.offset > s.start { reresolves = 0 }
        DebugTrace.log("\(job.digest.short) end \(s.start)..<\(s.offset) of \(s.stopAt) status=\(status) code=\(code.rawValue) verdict=\(s.verdict) in \(ByteFormat.oneDecimal(now - t.startedAt))s")

        if s.verdict == .writeFailed {
            fail(.io(operation: "write", path: job.path, errno: s.errno))
            return
        }
        if (300..<400).contains(status) {
            followRedirect(from: t, status: status, remainder: remainder, attempts: t.attempts)
            return
        }
        if s.verdict == .stopped || (code == CURLE_OK && remainder.isEmpty && s.checked) {
            if wasResolving { source = status == 200 ? .singleStream(t.url) : .resolved(t.url) }
            return
        }
        if status == 200 && s.verdict == .badStatus {
            // Range ignored on a later request: the only way on is one
            // stream of the whole blob, written from the sealed prefix.
            DebugTrace.log("\(job.digest.short) \(t.url) ignored Range: one stream from \(written.contiguousPrefix)")
            source = .singleStream(t.url)
            loopToCancel.append(contentsOf: active)
            active.removeAll()
            restartSingleStream(Piece(range: 0..<job.size, attempts: t.attempts))
            return
        }
        if s.verdict == .overlap {
            fail(.network(url: t.url, message: "internal error: a range overlapped bytes already sealed for hashing; nothing was stored"))
            return
        }
        let why = failureText(t, code: code, status: status)
        if t.headersTooLarge(code) {
            fail(.network(url: t.url, message: why))
            return
        }
        if let served = servedSize(t), served != job.size {
            // Not a glitch: the server has another blob than the manifest
            // describes. Retrying cannot fix that.
            fail(.network(url: t.url, message: "\(why): the server's blob is \(served) bytes, the manifest says \(job.size)"))
            return
        }
        let onCDN = !Self.sameOrigin(t.url, job.url)
        // Only the server's own verdict counts: a 2xx/3xx cut short is a
        // network failure, whatever the status line said.
        let verdict = s.verdict == .badStatus ? status : 0
        switch RetryPolicy.decide(status: verdict, onCDN: onCDN) {
        case .notFound:
            fail(.blobNotFound(job.digest))
            return
        case .fatal where verdict == 401:
            fail(.blobUnauthorized(challenge: t.header("WWW-Authenticate")))
            return
        case .fatal:
            fail(.network(url: t.url, message: why))
            return
        case .reresolve:
            reresolve(after: t, remainder: remainder, why: why)
            return
        case .retry:
            break
        }
        failures += 1
        let madeProgress = s.offset > s.start
        let attempts = madeProgress ? 1 : t.attempts + 1
        if attempts > config.retryLimit || failures > config.failureBudget {
            fail(.retriesExhausted(job.digest, lastError: why))
            return
        }
        var delay = madeProgress ? 0 : RetryPolicy.backoff(attempt: attempts)
        if verdict == 429 || verdict == 503, let wait = RetryPolicy.retryAfter(t.header("Retry-After")) {
            if wait > RetryPolicy.maxRetryAfter {
                fail(.retriesExhausted(job.digest, lastError: "\(why) (Retry-After: \(Int(min(wait, 1e9))) s)"))
                return
            }
            delay = max(delay, wait)
        }
        DebugTrace.log("\(job.digest.short) retry \(remainder) in \(ByteFormat.oneDecimal(delay))s (attempt \(attempts), failure \(failures)): \(why)")
        requeue(Piece(range: remainder, attempts: attempts, notBefore: now + delay))
    }

    /// A direct (CDN) URL answered as if it had expired: go back to the
    /// registry for a fresh one. Transfers still on the old URL fail the same
    /// way and just requeue; a URL that keeps dying ends the blob.
    private func reresolve(after t: Transfer, remainder: Range<Int64>, why: String) {
        if case .resolved(let current) = source, current == t.url {
            reresolves += 1
            if reresolves > 5 {
                fail(.retriesExhausted(job.digest, lastError: "fresh download URLs keep failing: \(why)"))
                return
            }
            DebugTrace.log("\(job.digest.short) direct URL failed (\(why)); resolving again")
            registryURL = job.url
            redirects = 0
            source = .unresolved
        }
        requeue(Piece(range: remainder, attempts: t.attempts))
    }

    /// Gives up on a transfer that stopped delivering while its peers did
    /// not: its remainder goes back in the queue for a fresh connection.
    func abandon(_ t: Transfer, now: Double, why: String) {
        sync()
        guard let index = active.firstIndex(where: { $0 === t }) else { return }
        active.remove(at: index)
        let s = t.sink
        failures += 1
        DebugTrace.log("\(job.digest.short) abandon \(s.offset)..<\(s.stopAt): \(why)")
        requeue(Piece(range: s.offset..<max(s.offset, s.stopAt), attempts: t.attempts + (s.offset > s.start ? 0 : 1)))
        loopToCancel.append(t)
    }

    /// Transfers the loop must cancel on this blob's behalf (after a failure
    /// or a switch to a single stream); the loop empties it.
    var loopToCancel: [Transfer] = []

    /// Lowers an in-flight transfer's end to `cut` and queues the rest.
    func split(_ t: Transfer, at cut: Int64, now: Double) {
        let end = t.sink.stopAt
        guard cut < end else { return }
        // The sink may hold received bytes past `cut` that it has not
        // written yet: it stops after them, never before.
        let stop = t.sink.lowerStop(to: cut)
        guard stop < end else { return }
        t.lastSplitAt = now
        DebugTrace.log("\(job.digest.short) split at \(stop): kept \(t.sink.offset)..<\(stop), queued ..<\(end), rate \(Int(t.rate ?? 0) >> 20) MiB/s")
        requeue(Piece(range: stop..<end))
    }

    /// Whether ranges of this blob can be split between connections.
    var splittable: Bool {
        if case .resolved = source { return !isDone }
        return false
    }

    private func followRedirect(from t: Transfer, status: Int, remainder: Range<Int64>, attempts: Int) {
        guard let target = t.redirectURL else {
            fail(.network(url: t.url, message: "\(status) redirect without a Location"))
            return
        }
        guard let to = URLParts(target), let from = URLParts(t.url),
              !(from.scheme == "https" && to.scheme == "http" && !job.insecure) else {
            fail(.network(url: t.url, message: Transfer.refusedRedirect(to: target)))
            return
        }
        redirects += 1
        if redirects > 10 {
            fail(.network(url: job.url, message: "maximum redirects exceeded (10) for directURL"))
            return
        }
        // Same origin: keep resolving there. Another origin: that is the
        // direct (CDN) URL, used for every range of this blob.
        if to.sameOrigin(from) {
            registryURL = target
            source = .unresolved
        } else {
            source = .resolved(target)
        }
        requeue(Piece(range: remainder, attempts: attempts))
    }

    private func failureText(_ t: Transfer, code: CURLcode, status: Int) -> String {
        let s = t.sink
        let host = URLParts(t.url)?.host ?? "server"
        switch s.verdict {
        case .badContentRange:
            let got = t.header("Content-Range").map { "\"\(HaulError.quoted($0))\"" } ?? "none"
            return "\(host) answered bytes \(s.start)-\(s.end - 1) with Content-Range \(got)"
        case .badLength:
            return "\(host) sent a Content-Length that is not the blob size \(job.size)"
        case .overlong:
            return "\(host) sent more than the requested bytes \(s.start)-\(s.end - 1)"
        case .badStatus:
            let body = s.errorBody.trimmingCharacters(in: .whitespacesAndNewlines)
            return body.isEmpty ? "\(host) answered \(status)" : "\(host) answered \(status): \(HaulError.quoted(body, limit: 200))"
        default:
            break
        }
        if code != CURLE_OK { return t.errorText(code) }
        if !s.checked { return "\(host) answered \(status) with no body" }
        return "unexpected EOF: \(host) sent \(s.offset - s.start) of \(s.stopAt - s.start) bytes"
    }

    /// The blob size a refused response announced, when it announced one.
    private func servedSize(_ t: Transfer) -> Int64? {
        switch t.sink.verdict {
        case .badContentRange:
            var first: Int64 = 0, last: Int64 = 0, total: Int64 = 0
            guard let value = t.header("Content-Range"), hl_parse_content_range(value, &first, &last, &total) == 0,
                  total >= 0 else { return nil }
            return total
        case .badLength:
            var length: curl_off_t = -1
            _ = hl_easy_getinfo_off(t.easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length)
            return length >= 0 ? Int64(length) : nil
        default:
            return nil
        }
    }

    /// Puts a range back in offset order, so the hash frontier keeps moving.
    func requeue(_ piece: Piece) {
        guard !piece.range.isEmpty else { return }
        if case .singleStream = source {
            restartSingleStream(piece)
            return
        }
        let index = pending.firstIndex { $0.range.lowerBound > piece.range.lowerBound } ?? pending.endIndex
        pending.insert(piece, at: index)
    }

    /// A server that ignores Range resends the blob from its first byte.
    /// Bytes below the sealed prefix may be hashed already and are never
    /// written again (the stream's copy of them is dropped); everything
    /// held above it is forgotten and comes from the new stream, so the
    /// file ends up holding each byte exactly once, as it was hashed.
    /// Call with no transfer of this blob active.
    private func restartSingleStream(_ piece: Piece) {
        let sealed = written.contiguousPrefix
        written = RangeSet(sealed > 0 ? [0..<sealed] : [])
        unassigned.removeAll()
        pending = sealed < job.size ? [Piece(range: sealed..<job.size, attempts: piece.attempts, notBefore: piece.notBefore)] : []
    }

    /// Emits progress (throttled) and finishes the blob once every byte is
    /// on disk and hashed.
    func tick(now: Double, force: Bool = false) {
        guard !isDone else { return }
        let err = hasher.error
        if err != 0 {
            fail(.io(operation: "read", path: job.path, errno: err))
            return
        }
        let hashed = hasher.hashed
        let count = written.count
        if count == job.size && hashed == job.size && active.isEmpty {
            guard let digest = hasher.digest else { return }
            DebugTrace.log("\(job.digest.short) done: hashed \(hashed - resumedHashed) bytes this run, resumed at \(resumedHashed)")
            isDone = true
            job.checkpoints.finish(nil)
            events.yield(.progress(written: count, hashed: hashed))
            events.yield(.finished(digest))
            events.finish()
            return
        }
        if (force || now - lastEmit >= 0.1) && (count, hashed) != emitted {
            events.yield(.progress(written: count, hashed: hashed))
            emitted = (count, hashed)
            lastEmit = now
        }
    }

    /// Checked on every loop wake: the cheap tests first.
    var awaitingHasher: Bool { !isDone && active.isEmpty && written.count == job.size }

    /// Ends the blob, keeping what is on disk for the next attempt.
    func fail(_ error: HaulError) {
        guard !isDone else { return }
        sync()
        isDone = true
        job.checkpoints.finish(snapshot())
        loopToCancel.append(contentsOf: active)
        active.removeAll()
        pending.removeAll()
        events.yield(.failed(error))
        events.finish()
    }
}
