import Foundation
internal import CShims
#if canImport(Glibc)
import Glibc
#endif

/// The state of one blob download, owned by the loop thread: which ranges
/// are on disk, which are waiting, which are in flight, where the blob is
/// served from, and its hash frontier.
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
    /// Ranges to fetch again (retries, split-off parts), in offset order;
    /// all lie below `unassigned`.
    private(set) var pending: [Piece] = []
    /// `[unassigned, size)` has not been handed to any connection yet.
    private var unassigned: Int64 = 0
    private let connections: Int
    private let maxPiece: Int64
    private let minPiece: Int64
    private(set) var active: [Transfer] = []
    private(set) var source: Source = .unresolved
    /// The registry URL being resolved (changes on same-host redirects).
    private var registryURL: String
    private var redirects = 0
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
    }

    var hasReadyWork: Bool {
        guard !isDone, !pending.isEmpty || unassigned < job.size else { return false }
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
        guard unassigned < job.size else { return nil }
        let size = SplitPolicy.nextPieceSize(remaining: job.size - unassigned, connections: connections,
                                             maxPiece: maxPiece, minPiece: minPiece)
        defer { unassigned += size }
        return Piece(range: unassigned..<unassigned + size)
    }

    /// Starts the next piece, if the source allows.
    func startNext(now: Double, loop: EventLoop) -> Bool {
        guard hasReadyWork, let piece = takePiece(now: now) else { return false }
        let url: String, resolving: Bool, acceptFull: Bool
        switch source {
        case .unresolved:
            (url, resolving, acceptFull) = (registryURL, true, true)
        case .resolved(let u):
            (url, resolving, acceptFull) = (u, false, false)
        case .singleStream(let u):
            (url, resolving, acceptFull) = (u, false, true)
        case .resolving:
            return false
        }
        let onRegistry = resolving || url == job.url
        guard let t = loop.startPiece(blob: self, url: url, range: piece.range, acceptFull: acceptFull,
                                      headers: onRegistry ? job.registryHeaders : [],
                                      followRedirects: !resolving, now: now) else {
            requeue(piece)
            fail(.network(url: url, message: "could not create a curl handle"))
            return false
        }
        t.resolving = resolving
        t.attempts = piece.attempts
        DebugTrace.log("\(job.digest.short) start \(piece.range) resolving=\(resolving)")
        if resolving { source = .resolving }
        active.append(t)
        return true
    }

    /// Records bytes written since the last call and feeds the hash frontier.
    func sync() {
        for t in active {
            let offset = t.sink.pointee.offset
            if offset > t.synced {
                written.insert(t.synced..<offset)
                t.synced = offset
            }
            // The first piece settles the source as soon as its response is
            // accepted, so the other pieces need not wait for its last byte.
            if t.resolving, t.sink.pointee.checked != 0, t.sink.pointee.reject == 0 {
                t.resolving = false
                source = t.status == 200 ? .singleStream(t.url) : .resolved(t.url)
                if case .singleStream = source {
                    pending.removeAll()
                    unassigned = job.size
                }
            }
        }
        hasher.advance(to: written.contiguousPrefix)
    }

    /// Handles the end of one of this blob's transfers (already removed from
    /// the multi handle, not yet closed).
    func transferEnded(_ t: Transfer, code: CURLcode, now: Double, config: EngineConfiguration) {
        sync()
        active.removeAll { $0 === t }
        guard !isDone else { return }
        let s = t.sink.pointee
        let status = t.status
        let remainder = s.offset..<max(s.offset, s.stop_at)
        let wasResolving = t.resolving
        if wasResolving { source = .unresolved }
        DebugTrace.log("\(job.digest.short) end \(s.start)..<\(s.offset) of \(s.stop_at) status=\(status) code=\(code.rawValue) reject=\(s.reject) in \(ByteFormat.oneDecimal(now - t.startedAt))s")

        if s.reject == Int32(HL_SINK_WRITE_FAILED) {
            fail(.io(operation: "write", path: job.path, errno: s.err_no))
            return
        }
        if (300..<400).contains(status) {
            followRedirect(from: t, status: status, remainder: remainder, attempts: t.attempts)
            return
        }
        if s.reject == Int32(HL_SINK_STOPPED) || (code == CURLE_OK && remainder.isEmpty && s.checked != 0) {
            if wasResolving { source = status == 200 ? .singleStream(t.url) : .resolved(t.url) }
            return
        }
        if status == 404 && t.url == registryURL {
            fail(.blobNotFound(job.digest))
            return
        }
        if status == 200 && s.reject == Int32(HL_SINK_BAD_STATUS) {
            // Range ignored on a later request: the only safe way on is one
            // stream of the whole blob. Bytes already written stay valid.
            source = .singleStream(t.url)
            pending = [Piece(range: 0..<job.size)]
            unassigned = job.size
            loopToCancel.append(contentsOf: active)
            active.removeAll()
            return
        }
        let why = failureText(t, code: code, status: status)
        let madeProgress = s.offset > s.start
        let attempts = madeProgress ? 1 : t.attempts + 1
        if attempts > config.retryLimit {
            fail(.retriesExhausted(job.digest, lastError: why))
            return
        }
        let backoff = min(10.0, 0.25 * Double(1 << min(attempts, 6))) * Double.random(in: 0.5...1.5)
        requeue(Piece(range: remainder, attempts: attempts, notBefore: madeProgress ? now : now + backoff))
    }

    /// Transfers the loop must cancel on this blob's behalf (after a failure
    /// or a switch to a single stream); the loop empties it.
    var loopToCancel: [Transfer] = []

    /// Lowers an in-flight transfer's end to `cut` and queues the rest.
    func split(_ t: Transfer, at cut: Int64, now: Double) {
        let end = t.sink.pointee.stop_at
        guard cut > t.sink.pointee.offset, cut < end else { return }
        t.sink.pointee.stop_at = cut
        t.lastSplitAt = now
        DebugTrace.log("\(job.digest.short) split at \(cut): kept \(t.sink.pointee.offset)..<\(cut), queued ..<\(end), rate \(Int(t.rate ?? 0) >> 20) MiB/s")
        requeue(Piece(range: cut..<end))
    }

    /// Whether ranges of this blob can be split between connections.
    var splittable: Bool {
        if case .resolved = source { return !isDone }
        return false
    }

    private func followRedirect(from t: Transfer, status: Int, remainder: Range<Int64>, attempts: Int) {
        guard let target = t.redirectURL, let to = URLParts(target), let from = URLParts(t.url) else {
            fail(.network(url: t.url, message: "\(status) redirect without a usable Location"))
            return
        }
        if from.scheme == "https" && to.scheme == "http" && !job.insecure {
            fail(.network(url: t.url, message: "refusing redirect from https to http (\(HaulError.quoted(target)))"))
            return
        }
        redirects += 1
        if redirects > 10 {
            fail(.network(url: job.url, message: "maximum redirects exceeded (10) for directURL"))
            return
        }
        // Same host: keep resolving there. Another host: that is the direct
        // (CDN) URL, used for every range of this blob.
        if to.host == from.host {
            registryURL = target
            source = .unresolved
        } else {
            source = .resolved(target)
        }
        requeue(Piece(range: remainder, attempts: attempts))
    }

    private func failureText(_ t: Transfer, code: CURLcode, status: Int) -> String {
        let s = t.sink.pointee
        let host = URLParts(t.url)?.host ?? "server"
        switch Int(s.reject) {
        case Int(HL_SINK_BAD_CONTENT_RANGE):
            let got = t.header("Content-Range").map { "\"\(HaulError.quoted($0))\"" } ?? "none"
            return "\(host) answered bytes \(s.start)-\(s.end - 1) with Content-Range \(got)"
        case Int(HL_SINK_BAD_LENGTH):
            return "\(host) sent a Content-Length that is not the blob size \(job.size)"
        case Int(HL_SINK_OVERLONG):
            return "\(host) sent more than the requested bytes \(s.start)-\(s.end - 1)"
        case Int(HL_SINK_BAD_STATUS):
            let body = String(decoding: withUnsafeBytes(of: t.sink.pointee.error_body) { Array($0.prefix(Int(s.error_body_len))) },
                              as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            return body.isEmpty ? "\(host) answered \(status)" : "\(host) answered \(status): \(HaulError.quoted(body, limit: 200))"
        default:
            break
        }
        if code != CURLE_OK { return t.errorText(code) }
        if s.checked == 0 { return "\(host) answered \(status) with no body" }
        return "unexpected EOF: \(host) sent \(s.offset - s.start) of \(s.stop_at - s.start) bytes"
    }

    /// Puts a range back in offset order, so the hash frontier keeps moving.
    func requeue(_ piece: Piece) {
        guard !piece.range.isEmpty else { return }
        if case .singleStream = source {
            // A server that ignores Range can only resend from the start.
            pending = [Piece(range: 0..<job.size, attempts: piece.attempts, notBefore: piece.notBefore)]
            unassigned = job.size
            return
        }
        let index = pending.firstIndex { $0.range.lowerBound > piece.range.lowerBound } ?? pending.endIndex
        pending.insert(piece, at: index)
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
            events.yield(.progress(written: count, hashed: hashed))
            events.yield(.finished(digest))
            events.finish()
            isDone = true
            return
        }
        if (force || now - lastEmit >= 0.1) && (count, hashed) != emitted {
            events.yield(.progress(written: count, hashed: hashed))
            emitted = (count, hashed)
            lastEmit = now
        }
    }

    var awaitingHasher: Bool { !isDone && written.count == job.size && active.isEmpty }

    func fail(_ error: HaulError) {
        guard !isDone else { return }
        isDone = true
        loopToCancel.append(contentsOf: active)
        active.removeAll()
        pending.removeAll()
        events.yield(.failed(error))
        events.finish()
    }
}
