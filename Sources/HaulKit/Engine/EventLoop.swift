internal import CShims
#if canImport(Glibc)
import Glibc
#endif

/// The single thread that owns the curl multi handle and every transfer.
///
/// Structure (after curl's own `--parallel` loop and Nix's download thread):
/// wait in `curl_multi_poll` on curl's sockets (woken by commands and final
/// digests through `curl_multi_wakeup`), run
/// `curl_multi_perform`, collect finished transfers, then apply policy:
/// start pieces within the connection budget, split slow or long ranges,
/// advance hash frontiers and emit progress. Nothing here blocks except the
/// poll, and bytes never pass through Swift: curl's write callback in C
/// pwrites them.
final class EventLoop {
    private let inbox: LoopInbox
    private let config: EngineConfiguration
    private let multi: OpaquePointer
    private let share: OpaquePointer
    private var transfers: [OpaquePointer: Transfer] = [:]
    private var fetches: [UInt64: (Transfer, CheckedContinuation<HTTPResponse, any Error>)] = [:]
    private var blobs: [UInt64: BlobDownload] = [:]
    /// Submission order, for round-robin dispatch between blobs.
    private var blobOrder: [UInt64] = []
    private var lastTick = 0.0
    private var stopping = false
    /// Throughput of recently completed pieces (EWMA): what a fresh
    /// connection can be expected to do, even when few are running.
    private var typicalRate: Double?

    init(inbox: LoopInbox, config: EngineConfiguration) {
        self.inbox = inbox
        self.config = config
        multi = inbox.multi
        share = curl_share_init()!
        // TLS sessions are per easy handle on curl 7.88; share them so a new
        // range connection to the same CDN resumes the session. DNS too.
        _ = hl_share_setopt_long(share, CURLSHOPT_SHARE, Int(CURL_LOCK_DATA_SSL_SESSION.rawValue))
        _ = hl_share_setopt_long(share, CURLSHOPT_SHARE, Int(CURL_LOCK_DATA_DNS.rawValue))
        _ = hl_multi_setopt_long(multi, CURLMOPT_PIPELINING, Int(CURLPIPE_NOTHING))
        _ = hl_multi_setopt_long(multi, CURLMOPT_MAXCONNECTS, max(config.connections * 2, 8))
    }

    func run() {
        while !stopping {
            for command in inbox.drain() { handle(command) }
            if stopping { break }
            var running: Int32 = 0
            _ = curl_multi_perform(multi, &running)
            collectFinished()
            let now = MonotonicClock.now()
            for id in blobOrder {
                blobs[id]?.sync()
                blobs[id]?.checkpointIfDue(now: now, config: config)
            }
            stepInlineHashers()
            if now - lastTick >= 0.1 { tick(now: now) } else { finishHashed(now: now) }
            dispatch(now: now)
            reapCancelled()
            // Commands and finished digests end the wait through
            // curl_multi_wakeup; the timeout is only the progress tick.
            _ = curl_multi_poll(multi, nil, 0, pollTimeout(now: now), nil)
        }
        shutdown()
    }

    // MARK: commands

    private func handle(_ command: LoopCommand) {
        let now = MonotonicClock.now()
        switch command {
        case .fetch(let id, let request, let continuation):
            let t: Transfer
            do {
                t = try Transfer.fetch(id: id, request: request, share: share, config: config, now: now)
            } catch {
                continuation.resume(throwing: error)
                return
            }
            add(t)
            fetches[id] = (t, continuation)
        case .download(let id, let job, let events):
            guard let hasher = Hasher(fd: job.fd, size: job.size, mode: config.hashMode, state: job.resume.hashState, wake: multi)
            else {
                job.checkpoints.finish(job.resume)
                events.yield(.failed(.io(operation: "hash", path: job.path, errno: ENOMEM)))
                events.finish()
                return
            }
            let blob = BlobDownload(id: id, job: job, events: events, hasher: hasher, config: config)
            blobs[id] = blob
            blobOrder.append(id)
            blob.tick(now: now, force: true)
            if blob.isDone { forget(blob) }
        case .cancel(let id):
            if let (t, continuation) = fetches.removeValue(forKey: id) {
                remove(t)
                continuation.resume(throwing: CancellationError())
            }
            if let blob = blobs[id] {
                blob.fail(.cancelled)
                forget(blob)
            }
        case .stop:
            stopping = true
        }
    }

    // MARK: transfers

    func startPiece(blob: BlobDownload, url: String, range: Range<Int64>, acceptFull: Bool,
                    headers: [String], followRedirects: Bool, now: Double) throws(HaulError) -> Transfer {
        let t = try Transfer.piece(blob: blob.id, url: url, range: range, total: blob.job.size,
                                   acceptFull: acceptFull, fd: blob.job.fd, hasher: blob.hasher,
                                   headers: headers, followRedirects: followRedirects, insecure: blob.job.insecure,
                                   share: share, config: config, now: now)
        add(t)
        return t
    }

    private func add(_ t: Transfer) {
        transfers[t.easy] = t
        _ = curl_multi_add_handle(multi, t.easy)
    }

    private func remove(_ t: Transfer) {
        transfers.removeValue(forKey: t.easy)
        _ = curl_multi_remove_handle(multi, t.easy)
        t.close()
    }

    private func collectFinished() {
        var easy: OpaquePointer?
        var code = CURLE_OK
        while hl_multi_next_done(multi, &easy, &code) != 0 {
            guard let easy, let t = transfers[easy] else { continue }
            transfers.removeValue(forKey: easy)
            _ = curl_multi_remove_handle(multi, easy)
            switch t.purpose {
            case .fetch(let id):
                if let (_, continuation) = fetches.removeValue(forKey: id) {
                    continuation.resume(with: response(of: t, code: code))
                }
            case .piece(let id):
                noteCompletion(t, code: code)
                if let blob = blobs[id] {
                    // A transfer the blob gave up on may finish in the same
                    // batch: it is closed below, so it must not be removed
                    // again later, and what it wrote no longer counts.
                    if let given = blob.loopToCancel.firstIndex(where: { $0 === t }) {
                        blob.loopToCancel.remove(at: given)
                    } else {
                        // A range cut short still keeps the bytes it received
                        // but had not written (at most a page).
                        t.sink.flush()
                        blob.transferEnded(t, code: code, now: MonotonicClock.now(), config: config)
                    }
                    if blob.isDone { forget(blob) }
                }
            }
            t.close()
        }
    }

    private func noteCompletion(_ t: Transfer, code: CURLcode) {
        let bytes = t.sink.offset - t.sink.start
        let seconds = MonotonicClock.now() - t.startedAt
        guard code == CURLE_OK, bytes >= 1 << 20, seconds > 0.05 else { return }
        let rate = Double(bytes) / seconds
        typicalRate = typicalRate.map { 0.7 * $0 + 0.3 * rate } ?? rate
    }

    /// The rate to expect of a connection: the better of what running peers
    /// do now and what finished pieces did.
    private func expectedRate(peers: [Double]) -> Double? {
        let median = SplitPolicy.median(peers)
        switch (median, typicalRate) {
        case (let m?, let t?): return max(m, t)
        case (let m?, nil): return m
        case (nil, let t?): return t
        default: return nil
        }
    }

    private func response(of t: Transfer, code: CURLcode) -> Result<HTTPResponse, any Error> {
        if t.sink.verdict == .tooLarge {
            return .failure(HaulError.network(url: t.url, message: "response larger than \(t.sink.memoryLimit) bytes"))
        }
        if code == CURLE_UNSUPPORTED_PROTOCOL, let target = t.redirectURL {
            return .failure(HaulError.network(url: t.url, message: Transfer.refusedRedirect(to: target)))
        }
        if code != CURLE_OK {
            return .failure(HaulError.network(url: t.url, message: t.errorText(code)))
        }
        let body = t.sink.body
        var headers: [String: String] = [:]
        for name in HTTPResponse.capturedHeaders {
            if let v = t.header(name) { headers[name] = v }
        }
        return .success(HTTPResponse(status: t.status, body: body, redirectURL: t.redirectURL,
                                     effectiveURL: t.effectiveURL, headers: headers))
    }

    /// Cancels transfers that blobs gave up (after a failure or a switch to a
    /// single stream).
    private func reapCancelled() {
        for id in blobOrder {
            guard let blob = blobs[id], !blob.loopToCancel.isEmpty else { continue }
            for t in blob.loopToCancel { remove(t) }
            blob.loopToCancel.removeAll()
            if blob.isDone { forget(blob) }
        }
    }

    private func forget(_ blob: BlobDownload) {
        for t in blob.loopToCancel { remove(t) }
        blob.loopToCancel.removeAll()
        blobs.removeValue(forKey: blob.id)
        blobOrder.removeAll { $0 == blob.id }
    }

    // MARK: policy

    private var activePieces: Int { transfers.count - fetches.count }

    /// Fills the connection budget: one new piece per blob per round, so small
    /// layers start at once instead of queueing behind a big one; then, with
    /// connections still free, splits the range with the most time left.
    private func dispatch(now: Double) {
        var free = config.connections - activePieces
        while free > 0 {
            var started = false
            for id in blobOrder where free > 0 {
                if let blob = blobs[id], blob.startNext(now: now, loop: self) {
                    free -= 1
                    started = true
                }
            }
            if !started { break }
        }
        while free > 0, stealRange(now: now) { free -= 1 }
    }

    private func pieceTransfers() -> [(BlobDownload, Transfer)] {
        var out: [(BlobDownload, Transfer)] = []
        for id in blobOrder {
            guard let blob = blobs[id], blob.splittable else { continue }
            for t in blob.active where !t.resolving { out.append((blob, t)) }
        }
        return out
    }


    /// An idle connection takes over the back part of the range expected to
    /// finish last.
    private func stealRange(now: Double) -> Bool {
        let median = expectedRate(peers: pieceTransfers().compactMap { $0.1.rate })
        var best: (BlobDownload, Transfer, Double)?
        for (blob, t) in pieceTransfers() {
            let remaining = Double(t.sink.stopAt - t.sink.offset)
            let eta = remaining / max(t.rate ?? median ?? 1, 1)
            if best == nil || eta > best!.2 { best = (blob, t, eta) }
        }
        // A range about to finish is not worth a new connection: the split
        // aborts the old response, wasting what is already in flight.
        guard let (blob, t, eta) = best, eta >= config.minStealSeconds else { return false }
        let s = t.sink
        let rate = t.rate ?? median ?? 1
        guard let cut = SplitPolicy.splitPoint(offset: s.offset, end: s.stopAt, rate: rate,
                                               newRate: median ?? rate, minPiece: config.minPieceSize)
        else { return false }
        blob.split(t, at: cut, now: now)
        return blob.startNext(now: now, loop: self)
    }

    /// Every 100 ms: rates, slow-connection splits, progress and completion.
    private func tick(now: Double) {
        lastTick = now
        let pieces = pieceTransfers()
        for (_, t) in pieces { t.sampleRate(now: now) }
        if pieces.count >= 2 {
            abandonStalled(pieces, now: now)
            for (blob, t) in pieces where !blob.loopToCancel.contains(where: { $0 === t }) {
                guard let rate = t.rate, now - t.lastSplitAt >= 3 else { continue }
                let peers = pieces.compactMap { $0.1 === t ? nil : $0.1.rate }
                guard let median = expectedRate(peers: peers),
                      SplitPolicy.isSlow(rate: rate, peerMedian: median, age: now - t.startedAt) else { continue }
                let s = t.sink
                if let cut = SplitPolicy.splitPoint(offset: s.offset, end: s.stopAt, rate: rate,
                                                    newRate: median, minPiece: config.minPieceSize) {
                    blob.split(t, at: cut, now: now)
                }
            }
        }
        for id in blobOrder {
            guard let blob = blobs[id] else { continue }
            blob.tick(now: now)
            if blob.isDone { forget(blob) }
        }
    }

    /// A connection that went silent while others still receive is cut
    /// loose at once instead of holding its range (and the hash frontier)
    /// until curl's absolute stall timeout.
    private func abandonStalled(_ pieces: [(BlobDownload, Transfer)], now: Double) {
        let moving = pieces.filter { now - $0.1.lastByteAt < 1 }.count
        guard moving > 0 else { return }
        for (blob, t) in pieces where now - t.lastByteAt >= config.peerStallSeconds {
            blob.abandon(t, now: now, why: "no data for \(Int(now - t.lastByteAt)) s while other connections receive")
        }
    }

    /// Blobs whose bytes are all on disk finish as soon as their hasher is
    /// done (it woke the loop), not at the next tick.
    private func finishHashed(now: Double) {
        for id in blobOrder {
            guard let blob = blobs[id], blob.awaitingHasher else { continue }
            blob.tick(now: now)
            if blob.isDone { forget(blob) }
        }
    }

    private func stepInlineHashers() {
        guard config.hashMode == .inline else { return }
        for id in blobOrder {
            guard let blob = blobs[id] else { continue }
            // A bounded slice per iteration keeps curl serviced.
            _ = blob.hasher.step(budget: 1 << 20)
        }
    }

    /// How long the poll may wait: until the next progress tick while blobs
    /// are in flight, not at all while an inline hasher has a backlog, until
    /// the earliest retry is due. Commands and final digests wake it early
    /// (curl_multi_wakeup), so nothing here waits for the hashing thread.
    private func pollTimeout(now: Double) -> Int32 {
        var timeout = blobOrder.isEmpty ? 60.0 : max(0, 0.1 - (now - lastTick))
        for id in blobOrder {
            guard let blob = blobs[id] else { continue }
            if config.hashMode == .inline, blob.hasher.hashed < blob.written.contiguousPrefix {
                timeout = 0
            }
            if let t = blob.earliestPending { timeout = min(timeout, max(0, t - now)) }
        }
        return Int32((timeout * 1000).rounded(.up))
    }

    private func shutdown() {
        for (_, continuation) in fetches.values { continuation.resume(throwing: CancellationError()) }
        fetches.removeAll()
        for blob in blobs.values { blob.fail(.cancelled) }
        for t in Array(transfers.values) { remove(t) }
        blobs.removeAll()
        blobOrder.removeAll()
        inbox.closeMulti()
        curl_share_cleanup(share)
    }
}
