/// A whole model's progress, folded from its pull's events, so an embedder
/// shows one bar (bytes, rate, ETA) without re-adding per-blob events:
///
///     var progress = PullProgress()
///     for try await event in haul.pull("llama3.2") {
///         progress.apply(event)
///         print(progress.completedBytes, "/", progress.totalBytes, progress.eta ?? .zero)
///     }
///
/// Bytes already stored before the pull (shared layers, a resumed blob's
/// data on disk) count as completed but not toward the rate, so the ETA is
/// that of the bytes still to move. The CLI's bars use the same value.
public struct PullProgress: Sendable, Equatable {
    /// Where the pull is: the phases of `PullEvent`, in order.
    public enum Phase: Sendable, Equatable {
        /// The manifest is being fetched.
        case resolvingManifest
        /// Blobs are arriving.
        case downloading
        /// Every blob is verified.
        case verifying
        /// The manifest is being stored.
        case writingManifest
        /// The model is stored.
        case done
    }

    /// Where one blob is.
    public enum BlobState: Sendable, Equatable {
        /// Stored before the pull began: nothing to fetch.
        case stored
        /// Not started yet.
        case waiting
        /// Bytes are arriving (or were on disk from an interrupted pull).
        case downloading
        /// Every byte is on disk and folded into its SHA-256.
        case complete
    }

    /// One blob's progress.
    public struct Blob: Sendable, Equatable {
        /// The blob.
        public let digest: Digest
        /// The blob's size.
        public let total: Int64
        /// Bytes on disk; never decreases.
        public internal(set) var completed: Int64
        /// Bytes already folded into the SHA-256; never decreases.
        public internal(set) var hashed: Int64
        /// Where the blob is.
        public internal(set) var state: BlobState
        /// Bytes that were on disk before this pull: all of a stored blob,
        /// what an earlier run left of a resumed one.
        public internal(set) var resumed: Int64
        /// Bytes whose hash this pull took over from an earlier run.
        public internal(set) var resumedHashed: Int64
        var meter = RateMeter()

        /// This blob's rate over the last few seconds; nil until measured.
        public var bytesPerSecond: Double? { meter.bytesPerSecond }
    }

    /// Where the pull is.
    public private(set) var phase: Phase = .resolvingManifest
    /// The model, once its manifest is known.
    public private(set) var name: ModelName?
    /// Distinct blobs in manifest order (layers, then config); empty until
    /// the manifest is known.
    public private(set) var blobs: [Blob] = []
    private var index: [Digest: Int] = [:]
    private var meter = RateMeter()

    /// Progress before the first event.
    public init() {}

    /// Every byte of the model, stored or to fetch; 0 until the manifest is
    /// known.
    public var totalBytes: Int64 { blobs.reduce(0) { $0 + $1.total } }
    /// Bytes of the model on disk now.
    public var completedBytes: Int64 { blobs.reduce(0) { $0 + $1.completed } }
    /// Bytes this pull downloaded (what was on disk before does not count).
    public var downloadedBytes: Int64 { blobs.reduce(0) { $0 + max(0, $1.completed - $1.resumed) } }
    /// Bytes this pull hashed: a resume starts from the saved hash state.
    public var hashedBytes: Int64 { blobs.reduce(0) { $0 + max(0, $1.hashed - $1.resumedHashed) } }
    /// Bytes whose hashing resumes took over from earlier runs.
    public var resumedHashedBytes: Int64 {
        blobs.reduce(0) { $0 + ($1.state == .stored ? 0 : $1.resumedHashed) }
    }
    /// Bytes of blobs that were not stored when the pull began, on disk
    /// now (this run's and earlier runs'): what an interrupted pull keeps.
    public var partialBytes: Int64 { blobs.reduce(0) { $0 + ($1.state == .stored ? 0 : $1.completed) } }
    /// 0...1; 0 until the manifest is known, 1 for a model of empty blobs.
    public var fraction: Double {
        guard !blobs.isEmpty else { return phase == .done ? 1 : 0 }
        let total = totalBytes
        return total == 0 ? 1 : Double(completedBytes) / Double(total)
    }
    /// The whole model's rate over the last few seconds; nil until measured.
    public var bytesPerSecond: Double? { meter.bytesPerSecond }
    /// Seconds left at the current rate; nil while the rate is unknown or 0.
    public var eta: Double? {
        guard phase == .downloading, let rate = bytesPerSecond, rate > 0 else { return nil }
        return Double(totalBytes - completedBytes) / rate
    }

    /// One blob's progress; nil for a blob the model does not have.
    public func blob(_ digest: Digest) -> Blob? { index[digest].map { blobs[$0] } }

    /// Folds one event in, timed now.
    public mutating func apply(_ event: PullEvent) { apply(event, now: MonotonicClock.now()) }

    /// Folds one event in. `now` is seconds on any monotonic clock (rates
    /// are differences of it); tests pass their own.
    public mutating func apply(_ event: PullEvent, now: Double) {
        switch event {
        case .pullingManifest:
            phase = .resolvingManifest
        case .plan(let plan):
            name = plan.name
            phase = .downloading
            blobs = plan.blobs.map { layer in
                let stored = plan.cached.contains(layer.digest)
                let held = stored ? layer.size : 0
                return Blob(
                    digest: layer.digest, total: layer.size, completed: held, hashed: held,
                    state: stored ? .stored : .waiting, resumed: held, resumedHashed: held)
            }
            index = Dictionary(blobs.enumerated().map { ($1.digest, $0) }, uniquingKeysWith: { first, _ in first })
            meter = RateMeter()
            meter.add(0, at: now)
        case .resuming(let p):
            // Data from an earlier run: completed, but not part of the rate.
            update(p, now: now, countsTowardRate: false)
            if let i = index[p.digest] {
                blobs[i].resumed = max(blobs[i].resumed, blobs[i].completed)
                blobs[i].resumedHashed = max(blobs[i].resumedHashed, blobs[i].hashed)
            }
        case .progress(let p):
            update(p, now: now, countsTowardRate: true)
        case .verifying:
            phase = .verifying
        case .writingManifest:
            phase = .writingManifest
        case .success:
            phase = .done
        case .removingUnusedLayers, .status, .notice, .source, .manifestProgress:
            // A list's child manifest is a few KiB: no part of the model's bytes.
            break
        }
    }

    private var transferred: Int64 = 0

    private mutating func update(_ p: BlobProgress, now: Double, countsTowardRate: Bool) {
        guard let i = index[p.digest] else { return }
        var blob = blobs[i]
        let grown = max(0, p.completed - blob.completed)
        blob.completed = max(blob.completed, min(p.completed, blob.total))
        blob.hashed = max(blob.hashed, min(p.hashed, blob.total))
        if blob.state != .stored {
            blob.state = blob.hashed == blob.total && blob.completed == blob.total ? .complete : .downloading
        }
        if countsTowardRate {
            blob.meter.add(blob.completed, at: now)
            transferred += grown
            meter.add(transferred, at: now)
        } else {
            // A resumed blob's rate starts from what it already has.
            blob.meter = RateMeter()
            blob.meter.add(blob.completed, at: now)
        }
        blobs[i] = blob
    }
}

/// A transfer rate over a sliding window of about five seconds: samples
/// closer than half a second are merged, so a burst of events costs
/// nothing and the window stays small.
struct RateMeter: Sendable, Equatable {
    private var samples: [Sample] = []

    private struct Sample: Sendable, Equatable {
        var time: Double
        var bytes: Int64
    }

    mutating func add(_ bytes: Int64, at time: Double) {
        if let last = samples.last, time - last.time < 0.5 {
            samples[samples.count - 1].bytes = bytes
            return
        }
        samples.append(Sample(time: time, bytes: bytes))
        samples.removeAll { time - $0.time > 5 }
    }

    var bytesPerSecond: Double? {
        guard let first = samples.first, let last = samples.last, last.time - first.time >= 0.5 else { return nil }
        return Double(last.bytes - first.bytes) / (last.time - first.time)
    }
}
