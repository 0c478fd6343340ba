import Foundation

/// Everything one blob download decides, as a value: which range to fetch
/// from where, what a finished or failed range means (retry, back off, go
/// back to the registry, switch to one stream, give up), and which ranges
/// were split off. It takes events and returns actions; the loop carries
/// them out and never asks it to call back. No I/O and no clock of its own,
/// so every decision can be replayed in a unit test in microseconds.
struct BlobPolicy {
    /// What the loop must do for this blob.
    enum Action: Equatable {
        /// Open a range request; its events carry `request.transfer`.
        case start(PieceRequest)
        /// Stop a running request: its range was handed back or the blob ended.
        case cancel(UInt64)
        /// The blob failed; what is on disk stays for the next attempt.
        case fail(HaulError)
    }

    /// A range request in flight, as the policy sees it.
    struct OpenRange: Equatable {
        let id: UInt64
        let range: Range<Int64>
        let attempts: Int
        /// The other ranges wait for this one's answer: it asks the registry
        /// (and may be redirected), or it first contacts a new https origin.
        var resolving: Bool
        /// Bytes below this offset are recorded as written.
        var synced: Int64
    }

    let digest: Digest
    let path: String
    private(set) var queue: PieceQueue
    private(set) var resolver: SourceResolver
    private(set) var flights: [OpenRange] = []
    private(set) var isDone = false
    /// Failed transfers in all, progress or not: the budget that ends a pull
    /// that keeps failing in new ways.
    private(set) var failures = 0
    private var nextID: UInt64 = 1
    private let retryLimit: Int
    private let failureBudget: Int
    /// The source is a mirror, perhaps a pull-through cache: see `coldCache`.
    private let mirror: Bool
    /// When a mirror first answered a range with the whole blob, if it did,
    /// and until when no request goes to it (it is storing the blob).
    private var coldSince: Double?
    /// Refusals (429/503) taken while other ranges of the blob received:
    /// they grow the wait before the next try, never the failures.
    private var throttles = 0
    private var coldUntil = 0.0
    /// The backoff's random factor (fixed in tests).
    private let jitter: @Sendable () -> Double

    init(
        digest: Digest, size: Int64, url: String, path: String, written: RangeSet,
        config: EngineConfiguration, mirror: Bool = false,
        jitter: @escaping @Sendable () -> Double = { Double.random(in: 0.5...1.5) }
    ) {
        self.mirror = mirror
        self.digest = digest
        self.path = path
        self.queue = PieceQueue(
            size: size, written: written, connections: config.connections,
            maxPiece: config.maxPieceSize, minSize: config.minNewPieceSize)
        self.resolver = SourceResolver(blobURL: url)
        self.retryLimit = config.retryLimit
        self.failureBudget = config.failureBudget
        self.jitter = jitter
    }

    var size: Int64 { queue.size }

    var hasReadyWork: Bool {
        guard !isDone, queue.hasWork else { return false }
        switch resolver.source {
        case .resolving: return false
        case .singleStream: return flights.isEmpty
        case .unresolved, .opening, .resolved: return true
        }
    }

    /// The request that is discovering the blob's direct URL, if one is.
    var resolvingTransfer: UInt64? { flights.first(where: \.resolving)?.id }

    /// Every byte is on disk and no request runs: only hashing is left.
    var isWritten: Bool { !isDone && flights.isEmpty && queue.isComplete }

    // MARK: events

    /// The next range request, if the source and the queue allow one now.
    mutating func next(now: Double) -> Action? {
        guard hasReadyWork, now >= coldUntil, let target = resolver.target, let piece = queue.take(now: now) else {
            return nil
        }
        let start = piece.range.lowerBound
        // A 200 carries the whole blob; the sink drops what precedes the
        // piece and writes the rest. That is only safe when the rest is all
        // hole: nothing held from the piece's start on, no other transfer.
        let acceptFull =
            (target.settles || target.singleStream) && flights.isEmpty
            && queue.written.count == start && queue.written.contiguousPrefix == start
            && !(target.resolving && waitsForWarmCache(now: now))
        let id = nextID
        nextID += 1
        flights.append(
            OpenRange(id: id, range: piece.range, attempts: piece.attempts, resolving: target.settles, synced: start))
        if target.settles { resolver.startedResolving() }
        DebugTrace.log(
            "\(digest.short) start \(piece.range) \(target.resolving ? "resolving" : target.settles ? "opening" : "to") \(URLParts(target.url)?.host ?? "")"
        )
        return .start(
            PieceRequest(
                transfer: id, range: piece.range, url: target.url, acceptFull: acceptFull,
                sendCredentials: target.resolving || resolver.sendsCredentials(to: target.url),
                followRedirects: !target.resolving))
    }

    /// The loop could not open the request it was asked to.
    mutating func startFailed(_ id: UInt64, error: HaulError) -> [Action] {
        guard let flight = removeFlight(id) else { return [] }
        if flight.resolving { resolver.resolvingFailed() }
        requeue(PieceQueue.Piece(range: flight.range, attempts: flight.attempts))
        return fail(error)
    }

    /// A request has written everything below `offset`.
    mutating func wrote(_ id: UInt64, upTo offset: Int64) {
        guard let i = flights.firstIndex(where: { $0.id == id }), offset > flights[i].synced else { return }
        queue.record(flights[i].synced..<offset)
        flights[i].synced = offset
    }

    /// A request's response was accepted: the resolving one settles the
    /// source at once, so the other ranges need not wait for its last byte.
    mutating func accepted(_ id: UInt64, url: String, status: Int) {
        guard let i = flights.firstIndex(where: { $0.id == id }), flights[i].resolving else { return }
        flights[i].resolving = false
        resolver.settle(url: url, status: status)
        if resolver.isSingleStream { queue.dropUnstarted() }
    }

    /// The loop cut a running request short at `stop`: `[stop, end)` is
    /// fetched again by another connection.
    mutating func splitOff(_ id: UInt64, _ range: Range<Int64>) {
        guard flights.contains(where: { $0.id == id }) else { return }
        requeue(PieceQueue.Piece(range: range))
    }

    /// A request stopped delivering while its peers did not: its remainder
    /// goes back in the queue for a fresh connection.
    mutating func abandon(_ id: UInt64, offset: Int64, stopAt: Int64, why: String) -> [Action] {
        wrote(id, upTo: offset)
        guard let flight = removeFlight(id) else { return [] }
        failures += 1
        DebugTrace.log("\(digest.short) abandon \(offset)..<\(stopAt): \(why)")
        requeue(
            PieceQueue.Piece(
                range: offset..<max(offset, stopAt),
                attempts: flight.attempts + (offset > flight.range.lowerBound ? 0 : 1)))
        return [.cancel(id)]
    }

    /// Its origin now allows fewer connections (`ConnectionController`):
    /// the request stops where it is and its remainder goes back to the
    /// queue. Not a failure: no attempt is counted, so a server that makes
    /// Haul back off many times never exhausts a range's retries.
    mutating func shed(_ id: UInt64, offset: Int64, stopAt: Int64) -> [Action] {
        wrote(id, upTo: offset)
        guard let flight = removeFlight(id) else { return [] }
        DebugTrace.log("\(digest.short) shed \(offset)..<\(stopAt)")
        requeue(PieceQueue.Piece(range: offset..<max(offset, stopAt), attempts: flight.attempts))
        return [.cancel(id)]
    }

    /// A request ended (removed from curl, not yet closed).
    mutating func ended(_ id: UInt64, _ o: PieceOutcome, now: Double) -> [Action] {
        wrote(id, upTo: o.offset)
        guard let flight = removeFlight(id), !isDone else { return [] }
        if flight.resolving { resolver.resolvingFailed() }
        if o.madeProgress { resolver.delivered() }
        DebugTrace.log(
            "\(digest.short) end \(o.start)..<\(o.offset) of \(o.stopAt) status=\(o.status) verdict=\(o.verdict) \(o.why)"
        )

        if o.verdict == .writeFailed { return fail(.io(operation: "write", path: path, errno: o.writeErrno)) }
        if (300..<400).contains(o.status) {
            if let refused = resolver.redirect(from: o.url, status: o.status, to: o.redirectURL) {
                return fail(refused)
            }
            requeue(PieceQueue.Piece(range: o.remainder, attempts: flight.attempts))
            return []
        }
        if o.verdict == .stopped || (o.completed && o.remainder.isEmpty && o.checked) {
            if flight.resolving { resolver.settle(url: o.url, status: o.status) }
            if o.completed && !flight.resolving {
                // A connection came free at the server: what it refused goes
                // now, and its next refusals wait from 0.25 s again.
                throttles = 0
                queue.releaseRefused(now: now)
            }
            return []
        }
        if o.status == 200 && o.verdict == .badStatus && flight.resolving && waitsForWarmCache(now: now) {
            // A cold pull-through cache (distribution's proxy mode) answers
            // a range with the whole blob streamed from its upstream, while
            // it fetches the blob a second time to store it. Hanging up ends
            // the first fetch at once; the ranges come once it has stored
            // the blob, so the upstream sends it about once, not twice.
            coldSince = coldSince ?? now
            let delay = min(5, 0.5 * Double(1 << min(flight.attempts, 4)))
            coldUntil = now + delay
            DebugTrace.log(
                "\(digest.short) \(o.url) answered a range with the whole blob: a cold cache? asking again in \(delay)s"
            )
            requeue(PieceQueue.Piece(range: flight.range, attempts: flight.attempts + 1, notBefore: now + delay))
            return []
        }
        if o.status == 200 && o.verdict == .badStatus {
            // Range ignored on a later request: the only way on is one
            // stream of the whole blob, written from the sealed prefix.
            DebugTrace.log("\(digest.short) \(o.url) ignored Range: one stream from \(queue.written.contiguousPrefix)")
            resolver.ignoredRange(url: o.url)
            let others = flights.map { Action.cancel($0.id) }
            flights.removeAll()
            queue.restartAsSingleStream(attempts: flight.attempts, notBefore: 0)
            return others
        }
        if o.verdict == .overlap {
            return fail(
                .network(
                    url: o.url,
                    message: "internal error: a range overlapped bytes already sealed for hashing; nothing was stored"))
        }
        if o.unretryable { return fail(.network(url: o.url, message: o.why)) }
        if let served = o.servedSize, served != size {
            // Not a glitch: the server has another blob than the manifest
            // describes. Retrying cannot fix that.
            return fail(
                .network(
                    url: o.url, message: "\(o.why): the server's blob is \(served) bytes, the manifest says \(size)"))
        }
        // Only the server's own verdict counts: a 2xx/3xx cut short is a
        // network failure, whatever the status line said.
        let status = o.verdict == .badStatus ? o.status : 0
        switch RetryPolicy.decide(status: status, onCDN: resolver.isDirect(o.url)) {
        case .notFound:
            return fail(.blobNotFound(digest))
        case .fatal where status == 401:
            return fail(.blobUnauthorized(challenge: o.challenge))
        case .fatal:
            return fail(.network(url: o.url, message: o.why))
        case .reresolve:
            guard resolver.expired(url: o.url) else {
                return fail(.retriesExhausted(digest, lastError: "fresh download URLs keep failing: \(o.why)"))
            }
            DebugTrace.log("\(digest.short) direct URL failed (\(o.why)); resolving again")
            requeue(PieceQueue.Piece(range: o.remainder, attempts: flight.attempts))
            return []
        case .retry:
            return retry(flight, o, status: status, now: now)
        }
    }

    /// Ends the blob: every running request is cancelled.
    mutating func fail(_ error: HaulError) -> [Action] {
        guard !isDone else { return [] }
        isDone = true
        let cancels = flights.map { Action.cancel($0.id) }
        flights.removeAll()
        queue.dropUnstarted()
        return cancels + [.fail(error)]
    }

    /// The blob's digest is known: nothing more to do.
    mutating func finish() { isDone = true }

    // MARK: helpers

    /// Whether a mirror that answers ranges with whole blobs is given time
    /// to turn warm: as long as fetching the blob at 20 MB/s would take,
    /// at least 30 s. After that it is taken for a server that ignores
    /// Range, and read as one stream.
    private func waitsForWarmCache(now: Double) -> Bool {
        guard mirror else { return false }
        guard let since = coldSince else { return true }
        return now - since < max(30, Double(size) / 20e6)
    }

    private mutating func retry(_ flight: OpenRange, _ o: PieceOutcome, status: Int, now: Double) -> [Action] {
        if (status == 429 || status == 503) && flights.contains(where: { $0.synced > $0.range.lowerBound }) {
            return throttled(flight, o, now: now)
        }
        failures += 1
        let attempts = o.madeProgress ? 1 : flight.attempts + 1
        if attempts > retryLimit || failures > failureBudget {
            return fail(.retriesExhausted(digest, lastError: o.why))
        }
        var delay = o.madeProgress ? 0 : RetryPolicy.backoff(attempt: attempts, random: jitter())
        if status == 429 || status == 503, let wait = RetryPolicy.retryAfter(o.retryAfter) {
            if wait > RetryPolicy.maxRetryAfter {
                return fail(.retriesExhausted(digest, lastError: "\(o.why) (Retry-After: \(Int(min(wait, 1e9))) s)"))
            }
            delay = max(delay, wait)
        }
        DebugTrace.log(
            "\(digest.short) retry \(o.remainder) in \(ByteFormat.oneDecimal(delay))s (attempt \(attempts), failure \(failures)): \(o.why)"
        )
        requeue(PieceQueue.Piece(range: o.remainder, attempts: attempts, notBefore: now + delay))
        return []
    }

    /// A server that refuses a client's connections beyond some count
    /// (a CDN's 503 or 429 without fault) while it serves the others: the
    /// refused range waits until one of the others ends (or longer and
    /// longer, to 10 s, while none does), and counts no attempt nor
    /// failure, so a blob whose other ranges progress is never failed for
    /// it, whatever `--connections` asked. (The origin's
    /// `ConnectionController` lowers the count meanwhile.) Once no other
    /// range receives, a refusal is a failure again.
    private mutating func throttled(_ flight: OpenRange, _ o: PieceOutcome, now: Double) -> [Action] {
        throttles += 1
        var delay = RetryPolicy.backoff(attempt: min(throttles, 6), random: jitter())
        if let wait = RetryPolicy.retryAfter(o.retryAfter) {
            if wait > RetryPolicy.maxRetryAfter {
                return fail(.retriesExhausted(digest, lastError: "\(o.why) (Retry-After: \(Int(min(wait, 1e9))) s)"))
            }
            delay = max(delay, wait)
        }
        DebugTrace.log(
            "\(digest.short) refused \(o.remainder) while others receive; again in \(ByteFormat.oneDecimal(delay))s: \(o.why)"
        )
        var piece = PieceQueue.Piece(range: o.remainder, attempts: flight.attempts, notBefore: now + delay)
        // A wait the server asked for (Retry-After) is kept.
        piece.refused = RetryPolicy.retryAfter(o.retryAfter) == nil
        requeue(piece)
        return []
    }

    private mutating func removeFlight(_ id: UInt64) -> OpenRange? {
        guard let i = flights.firstIndex(where: { $0.id == id }) else { return nil }
        return flights.remove(at: i)
    }

    /// On a single stream any lost range means the stream starts over.
    private mutating func requeue(_ piece: PieceQueue.Piece) {
        guard !piece.range.isEmpty else { return }
        if resolver.isSingleStream {
            queue.restartAsSingleStream(attempts: piece.attempts, notBefore: piece.notBefore)
        } else {
            queue.requeue(piece)
        }
    }
}

/// A range request the loop is to open.
struct PieceRequest: Equatable {
    let transfer: UInt64
    let range: Range<Int64>
    let url: String
    /// A 200 (the whole blob) is acceptable: the sink skips to the range.
    let acceptFull: Bool
    /// The registry's headers (credentials) go with it.
    let sendCredentials: Bool
    /// curl follows redirects itself (not while resolving, where the policy
    /// needs to see the Location).
    let followRedirects: Bool
}
