import Dispatch
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Makes a partial blob's checkpoints durable off the loop thread: data
/// `fdatasync` first, then the journal through temp + fsync + rename, so a
/// journal never claims bytes the disk might not have.
///
/// Submissions coalesce: while one checkpoint is being written, newer ones
/// replace each other and only the latest is written next. A slow disk thus
/// makes checkpoints sparser but never blocks the loop or piles up work.
final class CheckpointWriter: Sendable {
    private struct State {
        var pending: ResumePoint?
        var running = false
        var finished = false
        var settled = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Mutex(State())
    private let queue = DispatchQueue(label: "haul.checkpoint")
    private let fd: Int32
    private let journalPath: String
    private let digest: Digest
    private let size: Int64
    private let model: String

    init(fd: Int32, journalPath: String, digest: Digest, size: Int64, model: String) {
        self.fd = fd
        self.journalPath = journalPath
        self.digest = digest
        self.size = size
        self.model = model
    }

    func submit(_ point: ResumePoint) { schedule(point, final: false) }

    /// The last submission; nil drops anything not yet written (the blob is
    /// complete and its journal is about to go).
    func finish(_ point: ResumePoint?) { schedule(point, final: true) }

    /// Returns once `finish` was called and everything before it written.
    func settled() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = state.withLock { s in
                if !s.settled { s.waiters.append(continuation) }
                return s.settled
            }
            if done { continuation.resume() }
        }
    }

    private func schedule(_ point: ResumePoint?, final: Bool) {
        let start = state.withLock { s -> Bool in
            guard !s.finished else { return false }
            s.finished = final
            if point != nil || final { s.pending = point }
            if s.running { return false }
            s.running = true
            return true
        }
        if start { queue.async { self.drain() } }
    }

    private func drain() {
        while true {
            let (next, final, waiters) = state.withLock { s -> (ResumePoint?, Bool, [CheckedContinuation<Void, Never>]) in
                if let p = s.pending {
                    s.pending = nil
                    return (p, s.finished, [])
                }
                s.running = false
                guard s.finished else { return (nil, false, []) }
                s.settled = true
                defer { s.waiters.removeAll() }
                return (nil, true, s.waiters)
            }
            guard let next else {
                for w in waiters { w.resume() }
                return
            }
            write(next, syncDirectory: final)
        }
    }

    private func write(_ point: ResumePoint, syncDirectory: Bool) {
        if FileSystem.retrying({ fdatasync(fd) }) != 0 {
            DebugTrace.log("\(digest.short) checkpoint skipped: fdatasync: \(String(cString: strerror(errno)))")
            return
        }
        let journal = ResumeJournal(digest: digest, size: size, model: model, point: point)
        do {
            try FileSystem.writeAtomically(journal.encode(), to: journalPath, syncDirectory: syncDirectory)
        } catch {
            // A missed checkpoint costs re-downloading a little after a
            // crash; it is no reason to stop a download that can finish.
            DebugTrace.log("\(digest.short) checkpoint skipped: \(error)")
        }
    }
}
