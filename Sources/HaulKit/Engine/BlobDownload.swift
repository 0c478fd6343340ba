#if canImport(Glibc)
import Glibc
#endif

/// One blob download on the loop thread: its policy (what to fetch, from
/// where, what an ending means), the transfers the loop opened for it, its
/// hasher, its checkpoints and its progress events. Each method takes an
/// event and returns the policy's actions for the loop to carry out; none
/// calls the loop.
final class BlobDownload {
    typealias Action = BlobPolicy.Action

    let id: UInt64
    let job: BlobJob
    let events: AsyncStream<BlobEvent>.Continuation
    let hasher: Hasher
    private(set) var policy: BlobPolicy
    /// The running range requests, in the order they started.
    private(set) var transfers: [Transfer] = []
    /// Where hashing started (a resumed prefix is never hashed again).
    let resumedHashed: Int64
    private var checkpointed: (bytes: Int64, at: Double)
    private var lastEmit = -1.0
    private var emitted: (written: Int64, hashed: Int64) = (-1, -1)
    /// The event stream ended (finished or failed).
    private(set) var isDone = false
    /// The data file opened with O_DIRECT (`EngineConfiguration.directIO`);
    /// its transfers borrow it, and all of them end before this does.
    private let directWrite: DirectFile?

    init(
        id: UInt64, job: BlobJob, events: AsyncStream<BlobEvent>.Continuation, hasher: Hasher,
        config: EngineConfiguration, now: Double
    ) {
        self.directWrite = config.directIO ? DirectFile(reopening: job.fd, path: job.path, flags: O_WRONLY) : nil
        self.id = id
        self.job = job
        self.events = events
        self.hasher = hasher
        self.policy = BlobPolicy(
            digest: job.digest, size: job.size, url: job.url, path: job.path,
            written: job.resume.ranges, config: config, mirror: job.fromMirror)
        self.resumedHashed = hasher.hashed
        self.checkpointed = (job.resume.ranges.count, now)
        hasher.advance(to: job.resume.ranges.contiguousPrefix)
    }

    var written: RangeSet { policy.queue.written }

    /// The O_DIRECT descriptor transfers write through, or nil.
    var directFD: Int32? { directWrite?.rawValue }

    // MARK: transfers

    func next(now: Double) -> Action? { policy.next(now: now) }

    /// The origin the next range would go to, if one could start.
    /// The origin the next range would go to. The loop asks on every
    /// iteration with a connection free, so the parse is kept for as long
    /// as the target URL is the same string.
    var nextOrigin: String? {
        guard let url = policy.resolver.target?.url else { return nil }
        if let cached = originOfTarget, cached.url == url { return cached.origin }
        let origin = OriginBudgets.origin(of: url)
        originOfTarget = (url, origin)
        return origin
    }
    private var originOfTarget: (url: String, origin: String)?

    func attach(_ t: Transfer) { transfers.append(t) }

    /// Takes a transfer out of this blob's set; nil if it was not in it
    /// (cancelled earlier in the same batch).
    func detach(_ id: UInt64) -> Transfer? {
        guard let i = transfers.firstIndex(where: { $0.piece == id }) else { return nil }
        return transfers.remove(at: i)
    }

    func startFailed(_ id: UInt64, error: HaulError) -> [Action] { policy.startFailed(id, error: error) }

    /// Records bytes written since the last call, settles the source once
    /// the resolving request's response was accepted, and feeds the hash
    /// frontier.
    /// True when the source settled in this call (more ranges may start).
    @discardableResult
    func sync() -> Bool {
        for t in transfers { policy.wrote(t.piece, upTo: t.state.offset) }
        var settled = false
        if let id = policy.resolvingTransfer, let t = transfers.first(where: { $0.piece == id }),
            t.state.checked, t.state.verdict == .accepted
        {
            policy.accepted(id, url: t.url, status: t.status)
            settled = true
        }
        hasher.advance(to: written.contiguousPrefix)
        return settled
    }

    /// A transfer of this blob ended (out of curl, detached, not closed).
    func ended(_ t: Transfer, _ outcome: PieceOutcome, now: Double) -> [Action] {
        sync()
        return policy.ended(t.piece, outcome, now: now)
    }

    /// Lowers a running transfer's end to `cut` (or just past the bytes its
    /// sink holds unwritten) and queues the rest for another connection.
    func split(_ t: Transfer, at cut: Int64, now: Double) {
        let end = t.state.stopAt
        guard cut < end else { return }
        let stop = t.lowerStop(to: cut)
        guard stop < end else { return }
        t.lastSplitAt = now
        DebugTrace.log(
            "\(job.digest.short) split at \(stop): kept \(t.state.offset)..<\(stop), queued ..<\(end), rate \(Int(t.rate ?? 0) >> 20) MiB/s"
        )
        policy.splitOff(t.piece, stop..<end)
    }

    func abandon(_ t: Transfer, why: String) -> [Action] {
        sync()
        return policy.abandon(t.piece, offset: t.state.offset, stopAt: t.state.stopAt, why: why)
    }

    func shed(_ t: Transfer) -> [Action] {
        sync()
        return policy.shed(t.piece, offset: t.state.offset, stopAt: t.state.stopAt)
    }

    func fail(_ error: HaulError) -> [Action] {
        sync()
        return policy.fail(error)
    }

    // MARK: results

    /// Ends the event stream with the policy's failure; what is on disk is
    /// checkpointed for the next attempt.
    func failed(_ error: HaulError) {
        guard !isDone else { return }
        isDone = true
        job.checkpoints.finish(snapshot())
        events.yield(.failed(error))
        events.finish()
    }

    /// The state to resume from if the process died now.
    func snapshot() -> ResumePoint {
        ResumePoint(ranges: written, hashState: hasher.export())
    }

    /// Hands a checkpoint to the journal writer every `checkpointBytes` of
    /// new data or `checkpointInterval`, whichever comes first, so a
    /// crash loses little. The writer coalesces, so a slow disk only makes
    /// checkpoints sparser, never stalls the loop.
    func checkpointIfDue(now: Double, config: EngineConfiguration) {
        guard !isDone else { return }
        let bytes = written.count
        guard bytes > checkpointed.bytes else { return }
        guard
            bytes - checkpointed.bytes >= config.checkpointBytes
                || now - checkpointed.at >= MonotonicClock.seconds(config.checkpointInterval)
        else { return }
        checkpointed = (bytes, now)
        job.checkpoints.checkpoint(snapshot())
    }

    /// Checked on every loop wake: only hashing is left.
    var awaitingHasher: Bool { !isDone && policy.isWritten }

    /// Emits progress (throttled) and finishes the blob once every byte is
    /// on disk and hashed; a failed read-back fails it.
    func tick(now: Double, force: Bool = false) -> [Action] {
        guard !isDone else { return [] }
        let err = hasher.error
        if err != 0 { return fail(.io(operation: "read", path: job.path, errno: err)) }
        let hashed = hasher.hashed
        let count = written.count
        if policy.isWritten && hashed == job.size {
            guard let digest = hasher.digest else { return [] }
            DebugTrace.log(
                "\(job.digest.short) done: hashed \(hashed - resumedHashed) bytes this run, resumed at \(resumedHashed)"
            )
            policy.finish()
            isDone = true
            job.checkpoints.finish(nil)
            events.yield(.progress(written: count, hashed: hashed))
            events.yield(.finished(digest))
            events.finish()
            return []
        }
        if (force || now - lastEmit >= 0.1) && (count, hashed) != emitted {
            events.yield(.progress(written: count, hashed: hashed))
            emitted = (count, hashed)
            lastEmit = now
        }
        return []
    }
}
