internal import CShims

#if canImport(Glibc)
import Glibc
#endif

/// The single thread that owns the curl multi handle and every transfer.
///
/// Structure (after curl's own `--parallel` loop and Nix's download thread):
/// wait in `curl_multi_poll` on curl's sockets (woken by commands and final
/// digests through `curl_multi_wakeup`), run
/// `curl_multi_perform`, collect finished transfers, then carry out what
/// each blob's `BlobPolicy` and the `Rebalancer` decide: start pieces within
/// the connection budget, split slow or long ranges, cancel, fail; advance
/// hash frontiers and emit progress. The policies are values that return
/// actions; only this loop touches curl. Nothing here blocks except the
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
    /// Something that may let a range start happened since the last
    /// `dispatch`: a command, a range ended or was taken out, a source
    /// settled, a tick (limits, splits), a retry came due. Dispatching only
    /// then keeps the loop's cost per iteration flat while every origin is
    /// at its limit with part of the budget free (adaptive connections).
    private var dispatchDue = true
    private var lastDispatch = 0.0
    private var stopping = false
    private var rebalancer: Rebalancer
    /// How many ranges each origin may have (`OriginBudgets`).
    private var budgets: OriginBudgets
    /// Bytes, open ranges and limits by origin, for `/metrics`.
    private let metrics: OriginMetrics
    private let limiter: RateLimiter?
    /// Stage buffers of direct-I/O transfers (`EngineConfiguration.directIO`).
    private let stages: StagePool?

    init(inbox: LoopInbox, config: EngineConfiguration, metrics: OriginMetrics) {
        self.inbox = inbox
        self.metrics = metrics
        var config = config
        limiter = RateLimiter.make(for: &config, now: MonotonicClock.now())
        self.config = config
        rebalancer = Rebalancer(config: config)
        budgets = OriginBudgets(settings: .init(ceiling: config.connections, fixed: !config.adaptiveConnections))
        stages = config.directIO ? StagePool(size: config.stageSize) : nil
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
            for command in inbox.drain() {
                handle(command)
                dispatchDue = true
            }
            if stopping { break }
            var running: Int32 = 0
            _ = curl_multi_perform(multi, &running)
            collectFinished()
            let now = MonotonicClock.now()
            for id in blobOrder {
                if blobs[id]?.sync() == true { dispatchDue = true }
                blobs[id]?.checkpointIfDue(now: now, config: config)
                if let due = blobs[id]?.policy.queue.earliestRetry, due > lastDispatch, due <= now {
                    dispatchDue = true
                }
            }
            stepInlineHashers()
            if now - lastTick >= 0.1 { tick(now: now) } else { finishHashed(now: now) }
            if dispatchDue {
                dispatchDue = false
                lastDispatch = now
                dispatch(now: now)
            }
            limiter?.refill(now: now)
            limiter?.resume(blobOrder.flatMap { blobs[$0]?.transfers ?? [] })
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
            guard
                let hasher = Hasher(
                    fd: job.fd, size: job.size, mode: config.hashMode, state: job.resume.hashState, wake: multi,
                    direct: config.directIO, path: job.path)
            else {
                job.checkpoints.finish(job.resume)
                events.yield(.failed(.io(operation: "hash", path: job.path, errno: ENOMEM)))
                events.finish()
                return
            }
            let blob = BlobDownload(id: id, job: job, events: events, hasher: hasher, config: config, now: now)
            blobs[id] = blob
            blobOrder.append(id)
            perform(blob.tick(now: now, force: true), for: blob, now: now)
        case .cancel(let id):
            if let (t, continuation) = fetches.removeValue(forKey: id) {
                remove(t)
                continuation.resume(throwing: CancellationError())
            }
            if let blob = blobs[id] { perform(blob.fail(.cancelled), for: blob, now: now) }
        case .stop:
            stopping = true
        }
    }

    // MARK: carrying out policy

    /// Does what a blob's policy decided: open and cancel its transfers, end
    /// its event stream on failure.
    private func perform(_ actions: [BlobPolicy.Action], for blob: BlobDownload, now: Double) {
        for action in actions {
            switch action {
            case .start(let request):
                do {
                    let t = try Transfer.piece(
                        request, of: blob, share: share, config: config, stages: stages, now: now)
                    if let limiter { t.limit(by: limiter.bucket) }
                    blob.attach(t)
                    add(t)
                } catch {
                    perform(blob.startFailed(request.transfer, error: error), for: blob, now: now)
                }
            case .cancel(let id):
                if let t = blob.detach(id) { remove(t) }
            case .fail(let error):
                blob.failed(error)
            }
        }
        if blob.isDone { forget(blob) }
    }

    private func add(_ t: Transfer) {
        transfers[t.easy] = t
        _ = curl_multi_add_handle(multi, t.easy)
    }

    /// Takes a transfer out of curl and closes it; a transfer already taken
    /// out (it finished in the batch being handled) is only closed.
    private func remove(_ t: Transfer) {
        dispatchDue = true
        if transfers.removeValue(forKey: t.easy) != nil { _ = curl_multi_remove_handle(multi, t.easy) }
        count(t)
        t.close()
    }

    /// Reports a range's bytes not yet counted to its origin's budget.
    private func count(_ t: Transfer) {
        guard case .piece = t.purpose, !t.isClosed else { return }
        let received = t.state.received
        budgets.delivered(received - t.countedBytes, by: t.origin)
        metrics.delivered(received - t.countedBytes, by: t.origin)
        t.countedBytes = received
    }

    /// Open ranges by origin.
    private func activeByOrigin() -> [String: Int] {
        var active: [String: Int] = [:]
        for id in blobOrder { for t in blobs[id]?.transfers ?? [] { active[t.origin, default: 0] += 1 } }
        return active
    }

    /// Every transfer curl finished, taken out of curl first, so that one
    /// ending (say, a 200 after 206s) may cancel others finished in the same
    /// batch without touching a closed handle.
    private func collectFinished() {
        var done: [(Transfer, CURLcode)] = []
        var easy: OpaquePointer?
        var code = CURLE_OK
        while hl_multi_next_done(multi, &easy, &code) != 0 {
            guard let easy, let t = transfers.removeValue(forKey: easy) else { continue }
            _ = curl_multi_remove_handle(multi, easy)
            done.append((t, code))
        }
        if !done.isEmpty { dispatchDue = true }
        for (t, code) in done {
            switch t.purpose {
            case .fetch(let id):
                if let (_, continuation) = fetches.removeValue(forKey: id) {
                    continuation.resume(with: t.response(code: code))
                }
            case .piece(let id, let piece):
                // A transfer its blob cancelled meanwhile is only closed.
                guard let blob = blobs[id], blob.detach(piece) != nil else { break }
                // A range cut short still keeps the bytes it received but
                // had not written (at most a page).
                t.flush()
                let now = MonotonicClock.now()
                if code == CURLE_OK {
                    rebalancer.completed(bytes: t.state.offset - t.state.start, seconds: now - t.startedAt)
                }
                count(t)
                let outcome = t.outcome(code: code, blobSize: blob.job.size)
                judge(outcome, of: t, code: code, now: now)
                perform(blob.ended(t, outcome, now: now), for: blob, now: now)
            }
            t.close()
        }
    }

    /// A range's ending as its origin's budget reads it: a refusal (429,
    /// 503) or a cut connection means fewer connections there.
    private func judge(_ o: PieceOutcome, of t: Transfer, code: CURLcode, now: Double) {
        if o.status == 429 || o.status == 503 {
            let receiving = blobOrder.reduce(0) { sum, id in
                sum
                    + (blobs[id]?.transfers.filter {
                        $0.origin == t.origin && now - $0.lastByteAt < 1 && $0.state.received > $0.state.start
                    }.count ?? 0)
            }
            budgets.throttled(
                t.origin, now: now, receiving: receiving,
                retryAfter: RetryPolicy.retryAfter(o.retryAfter).map { min($0, RetryPolicy.maxRetryAfter) })
        } else if code == CURLE_RECV_ERROR || code == CURLE_SEND_ERROR || code == CURLE_PARTIAL_FILE {
            budgets.reset(t.origin, now: now)
        }
    }

    private func forget(_ blob: BlobDownload) {
        for t in blob.transfers {
            _ = blob.detach(t.piece)
            remove(t)
        }
        blobs.removeValue(forKey: blob.id)
        blobOrder.removeAll { $0 == blob.id }
        // The tick stops with the last blob: its ranges read 0 now.
        if blobOrder.isEmpty { metrics.update(active: [:], limits: budgets.limits) }
    }

    // MARK: scheduling

    private var activePieces: Int { transfers.count - fetches.count }

    /// Fills the connection budget, each free connection to the blob running
    /// the fewest ranges (`FairShare`), so small layers start at once instead
    /// of queueing behind a big one and concurrent pulls share evenly; then,
    /// with connections still free, an idle connection takes over the back
    /// part of the range with the most time left.
    private func dispatch(now: Double) {
        var free = config.connections - activePieces
        guard free > 0 else { return }
        var active = activeByOrigin()
        // Within the whole budget, each origin within its own.
        func allowed(_ blob: BlobDownload) -> Bool {
            guard let origin = blob.nextOrigin else { return true }
            return active[origin, default: 0] < budgets.limit(for: origin)
        }
        // Runs on every iteration while the origins' limits leave part of
        // the budget free: the common case (every origin at its limit) ends
        // here, before any array is built.
        guard blobOrder.contains(where: { blobs[$0].map(allowed) ?? false }) else { return }
        while free > 0 {
            let candidates = blobOrder.compactMap { blobs[$0] }
            var started = false
            for i in FairShare.order(running: candidates.map(\.transfers.count)) where allowed(candidates[i]) {
                let origin = candidates[i].nextOrigin
                guard let start = candidates[i].next(now: now) else { continue }
                perform([start], for: candidates[i], now: now)
                if let origin { active[origin, default: 0] += 1 }
                free -= 1
                started = true
                break
            }
            if !started { break }
        }
        while free > 0, case .split(let id, let piece, let cut)? = rebalancer.steal(flights { allowed($0) }),
            let blob = blobs[id], let t = blob.transfers.first(where: { $0.piece == piece })
        {
            let origin = blob.nextOrigin
            blob.split(t, at: cut, now: now)
            guard let start = blob.next(now: now) else { break }
            perform([start], for: blob, now: now)
            if let origin { active[origin, default: 0] += 1 }
            free -= 1
        }
    }

    /// Snapshots of the running ranges that may be split, of the blobs
    /// `include` admits.
    private func flights(_ include: (BlobDownload) -> Bool = { _ in true }) -> [Rebalancer.Running] {
        var out: [Rebalancer.Running] = []
        for id in blobOrder {
            guard let blob = blobs[id], blob.policy.resolver.isSplittable, !blob.isDone, include(blob) else { continue }
            let resolving = blob.policy.resolvingTransfer
            for t in blob.transfers where t.piece != resolving {
                out.append(
                    Rebalancer.Running(
                        blob: id, transfer: t.piece, offset: t.state.received, stopAt: t.state.stopAt,
                        rate: t.rate, startedAt: t.startedAt, lastByteAt: t.lastByteAt,
                        lastSplitAt: t.lastSplitAt))
            }
        }
        return out
    }

    /// An origin whose limit fell below its open ranges (the step that
    /// bought nothing undone, a collapse, a 429) loses the newest of them:
    /// a server whose rate collapses under too many connections recovers
    /// only when they close, and the newest were the probe. Each stops
    /// where it is; its remainder is queued for a connection within the
    /// limit. The range that settles a blob's source, and a stream that
    /// cannot be split, are kept.
    private func shedOverLimit(now: Double) {
        var open: [String: [(BlobDownload, Transfer)]] = [:]
        for id in blobOrder {
            guard let blob = blobs[id], blob.policy.resolver.isSplittable else { continue }
            let resolving = blob.policy.resolvingTransfer
            for t in blob.transfers where t.piece != resolving { open[t.origin, default: []].append((blob, t)) }
        }
        let active = activeByOrigin()
        for (origin, ranges) in open {
            let excess = active[origin, default: 0] - budgets.limit(for: origin)
            guard excess > 0 else { continue }
            for (blob, t) in ranges.sorted(by: { $0.1.startedAt > $1.1.startedAt }).prefix(excess) {
                perform(blob.shed(t), for: blob, now: now)
            }
        }
    }

    /// Every 100 ms: rates, stalled and slow connections, progress and
    /// completion.
    private func tick(now: Double) {
        lastTick = now
        dispatchDue = true
        for id in blobOrder {
            blobs[id]?.transfers.forEach {
                $0.sampleRate(now: now)
                $0.drainIfSlow(now: now)
                count($0)
            }
        }
        let active = activeByOrigin()
        budgets.tick(now: now, active: active)
        metrics.update(active: active, limits: budgets.limits)
        shedOverLimit(now: now)
        for action in rebalancer.rebalance(flights(), now: now) {
            switch action {
            case .split(let id, let piece, let cut):
                guard let blob = blobs[id], let t = blob.transfers.first(where: { $0.piece == piece }) else { continue }
                blob.split(t, at: cut, now: now)
            case .abandon(let id, let piece, let why):
                guard let blob = blobs[id], let t = blob.transfers.first(where: { $0.piece == piece }) else { continue }
                perform(blob.abandon(t, why: why), for: blob, now: now)
            }
        }
        for id in blobOrder {
            guard let blob = blobs[id] else { continue }
            perform(blob.tick(now: now), for: blob, now: now)
        }
    }

    /// Blobs whose bytes are all on disk finish as soon as their hasher is
    /// done (it woke the loop), not at the next tick.
    private func finishHashed(now: Double) {
        for id in blobOrder {
            guard let blob = blobs[id], blob.awaitingHasher else { continue }
            perform(blob.tick(now: now), for: blob, now: now)
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
            if let t = blob.policy.queue.earliestRetry { timeout = min(timeout, max(0, t - now)) }
            if let limiter, blob.transfers.contains(where: \.state.isPaused) {
                timeout = min(timeout, max(0.005, limiter.wait))
            }
        }
        return Int32((timeout * 1000).rounded(.up))
    }

    private func shutdown() {
        for (_, continuation) in fetches.values { continuation.resume(throwing: CancellationError()) }
        fetches.removeAll()
        for id in blobOrder {
            guard let blob = blobs[id] else { continue }
            perform(blob.fail(.cancelled), for: blob, now: MonotonicClock.now())
        }
        for t in Array(transfers.values) { remove(t) }
        blobs.removeAll()
        blobOrder.removeAll()
        inbox.closeMulti()
        curl_share_cleanup(share)
    }
}
