import Dispatch
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Writes a partial blob's checkpoints off the loop thread, in two tiers:
///
/// - the *live* journal (`….journal.live`), rewritten at every checkpoint
///   with no `fsync`, stamped with the kernel's boot id. A killed process
///   loses nothing the kernel had accepted (the page cache outlives it), so
///   after `kill -9` the live journal is exact;
/// - the *durable* journal (`….journal`), every `durableBytes` or
///   `durableInterval`: data `fdatasync` first, then the journal through temp
///   + fsync + rename, so it never claims bytes a power cut could take.
///
/// On resume the live journal is believed only if the boot id matches (no
/// reboot or power loss in between); otherwise the durable one is used.
///
/// Each tier coalesces: while one write runs, newer checkpoints replace each
/// other and only the latest is written next. A slow disk makes durable
/// checkpoints sparser but never blocks the loop or piles up work.
final class CheckpointWriter: Sendable {
    private struct State {
        var finished = false
        var durableAt: (bytes: Int64, time: Double) = (0, 0)
        /// Lanes that have written their last checkpoint.
        var finishedLanes = 0
        var waiters: [CheckedContinuation<Void, Never>] = []
        var settled = false
    }

    private let state = Mutex(State())
    private let live: Lane
    private let durable: Lane
    private let durableBytes: Int64
    private let durableInterval: Double

    init(
        fd: Int32, files: PartialFiles, digest: Digest, size: Int64, model: String,
        durableBytes: Int64, durableInterval: Double
    ) {
        self.durableBytes = durableBytes
        self.durableInterval = durableInterval
        live = Lane(label: "haul.checkpoint.live") { point, _ in
            let journal = ResumeJournal(
                digest: digest, size: size, model: model, boot: BootID.current, point: point,
                anchor: PartialBlob.anchor(of: fd, hashed: point.hashed))
            do {
                try FileSystem.writeAtomically(
                    journal.encode(), to: files.liveJournal, fsyncFile: false, syncDirectory: false)
            } catch {
                DebugTrace.log("\(digest.short) live checkpoint skipped: \(error)")
            }
        }
        durable = Lane(label: "haul.checkpoint.durable") { point, final in
            let started = MonotonicClock.now()
            if FileSystem.retrying({ fdatasync(fd) }) != 0 {
                DebugTrace.log("\(digest.short) checkpoint skipped: fdatasync: \(String(cString: strerror(errno)))")
                return
            }
            let journal = ResumeJournal(
                digest: digest, size: size, model: model, boot: nil, point: point,
                anchor: PartialBlob.anchor(of: fd, hashed: point.hashed))
            do {
                // The directory sync is needed only for the last one: a lost
                // rename leaves the previous journal, which is still true.
                try FileSystem.writeAtomically(journal.encode(), to: files.journal, syncDirectory: final)
                DebugTrace.log(
                    "\(digest.short) durable checkpoint \(point.ranges.count) bytes in \(Int((MonotonicClock.now() - started) * 1000)) ms"
                )
            } catch {
                // A missed checkpoint costs re-downloading a little after a
                // crash; it is no reason to stop a download that can finish.
                DebugTrace.log("\(digest.short) checkpoint skipped: \(error)")
            }
        }
    }

    func submit(_ point: ResumePoint) {
        let now = MonotonicClock.now()
        let makeDurable = state.withLock { s -> Bool? in
            guard !s.finished else { return nil }
            let due =
                point.ranges.count - s.durableAt.bytes >= durableBytes || now - s.durableAt.time >= durableInterval
            if due { s.durableAt = (point.ranges.count, now) }
            return due
        }
        guard let makeDurable else { return }
        live.submit(point, final: false, owner: self)
        if makeDurable { durable.submit(point, final: false, owner: self) }
    }

    /// The last submission; nil drops anything not yet written (the blob is
    /// complete and its journals are about to go).
    func finish(_ point: ResumePoint?) {
        let first = state.withLock { s -> Bool in
            defer { s.finished = true }
            return !s.finished
        }
        guard first else { return }
        live.submit(point, final: true, owner: self)
        durable.submit(point, final: true, owner: self)
    }

    /// Returns once `finish` was called and both tiers have written it.
    func settled() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = state.withLock { s in
                if !s.settled { s.waiters.append(continuation) }
                return s.settled
            }
            if done { continuation.resume() }
        }
    }

    fileprivate func laneFinished() {
        let waiters = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            s.finishedLanes += 1
            guard s.finishedLanes == 2 else { return [] }
            s.settled = true
            defer { s.waiters.removeAll() }
            return s.waiters
        }
        for w in waiters { w.resume() }
    }
}

/// One tier: a serial queue that writes only the newest pending checkpoint.
private final class Lane: Sendable {
    private struct State {
        var pending: ResumePoint?
        var running = false
        var final = false
    }

    private let state = Mutex(State())
    private let queue: DispatchQueue
    private let write: @Sendable (ResumePoint, _ final: Bool) -> Void

    init(label: String, write: @escaping @Sendable (ResumePoint, Bool) -> Void) {
        queue = DispatchQueue(label: label)
        self.write = write
    }

    func submit(_ point: ResumePoint?, final: Bool, owner: CheckpointWriter) {
        let start = state.withLock { s -> Bool in
            guard !s.final else { return false }
            s.final = final
            if point != nil || final { s.pending = point }
            if s.running { return false }
            s.running = true
            return true
        }
        if start { queue.async { self.drain(owner) } }
    }

    private func drain(_ owner: CheckpointWriter) {
        while true {
            let (next, final) = state.withLock { s -> (ResumePoint?, Bool) in
                if let p = s.pending {
                    s.pending = nil
                    return (p, s.final)
                }
                s.running = false
                return (nil, s.final)
            }
            guard let next else {
                if final { owner.laneFinished() }
                return
            }
            write(next, final)
        }
    }
}

/// The kernel's boot id: it changes on every boot, so a journal stamped with
/// the current one was written since the page cache last started empty.
enum BootID {
    /// Nil where the kernel does not say; live journals are then never
    /// believed.
    static let current: String? = {
        guard let bytes = try? FileSystem.readFile("/proc/sys/kernel/random/boot_id", limit: 100) else { return nil }
        let id = String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return id.isEmpty || id.contains(" ") ? nil : id
    }()
}
