import Synchronization

/// One download per blob, however many pulls want it at once.
///
/// Two pulls of the same model (or of models sharing a layer) each `join`
/// the blob; the first starts the download, later ones watch it. Every
/// watcher gets the blob's progress on its own stream, starting from the
/// latest state, and the download's outcome at the end. A watcher that
/// goes away (its pull was cancelled, its client hung up) leaves; when the
/// last one leaves, the download is cancelled, which keeps its partial for
/// resume.
final class SharedDownloads: Sendable {
    typealias Work = @Sendable (_ emit: @escaping @Sendable (PullEvent) -> Void) async throws -> Void

    private struct Download {
        let id: UInt64
        var task: Task<Void, Never>?
        var watchers: [UInt64: AsyncThrowingStream<PullEvent, any Error>.Continuation] = [:]
        /// Replayed to late watchers, so their stream starts where the blob is.
        var latest: PullEvent?
        /// Cancelled after its last watcher left; still letting go of its
        /// partial (file lock, final checkpoint).
        var stopping = false
    }

    private let flights = Mutex<[Digest: Download]>([:])
    private let nextID = Atomic<UInt64>(0)

    /// One pull's watch of one blob's download.
    struct Watch: Sendable {
        /// Ends when the download succeeded; throws what it threw otherwise.
        let events: AsyncThrowingStream<PullEvent, any Error>
        fileprivate let digest: Digest
        fileprivate let watcher: UInt64
    }

    /// Watches the download of `digest`, starting it with `work` if nobody
    /// is downloading it.
    func join(_ digest: Digest, work: @escaping Work) -> Watch {
        let (stream, continuation) = AsyncThrowingStream.makeStream(of: PullEvent.self)
        let watcher = nextID.add(1, ordering: .relaxed).newValue
        flights.withLock { flights in
            if var flight = flights[digest], !flight.stopping {
                if let latest = flight.latest { continuation.yield(latest) }
                flight.watchers[watcher] = continuation
                flights[digest] = flight
                return
            }
            // A stopping flight still holds the partial's lock: the new one
            // starts when it is gone, and resumes from its last checkpoint.
            let previous = flights[digest]?.task
            let id = nextID.add(1, ordering: .relaxed).newValue
            var flight = Download(id: id)
            flight.watchers[watcher] = continuation
            flight.task = Task {
                await previous?.value
                let result: Result<Void, any Error>
                do {
                    try Task.checkCancellation()
                    try await work { [weak self] event in self?.publish(event, digest: digest, flight: id) }
                    result = .success(())
                } catch {
                    result = .failure(error)
                }
                self.land(digest, flight: id, result: result)
            }
            flights[digest] = flight
        }
        continuation.onTermination = { [weak self] _ in self?.leave(digest, watcher: watcher) }
        return Watch(events: stream, digest: digest, watcher: watcher)
    }

    /// Leaves `watch` and, if nobody watches the download any more, returns
    /// once it has stopped, so a cancelled pull ends only after its data is
    /// checkpointed and its partial unlocked (as when it downloaded alone).
    /// Leaving here, not only in the stream's termination handler, is what
    /// makes that deterministic: the handler may run after this call.
    func settle(_ watch: Watch) async {
        leave(watch.digest, watcher: watch.watcher)
        let task = flights.withLock { flights in
            flights[watch.digest].flatMap { $0.stopping ? $0.task : nil }
        }
        await task?.value
    }

    /// Cancels every download and returns once each has let go of its
    /// partial and written its last checkpoint.
    func stopAll() async {
        let tasks = flights.withLock { flights in
            flights.values.compactMap { flight -> Task<Void, Never>? in
                flight.task?.cancel()
                return flight.task
            }
        }
        for task in tasks { await task.value }
    }

    private func publish(_ event: PullEvent, digest: Digest, flight id: UInt64) {
        flights.withLock { flights in
            guard var flight = flights[digest], flight.id == id else { return }
            flight.latest = event
            for watcher in flight.watchers.values { watcher.yield(event) }
            flights[digest] = flight
        }
    }

    private func land(_ digest: Digest, flight id: UInt64, result: Result<Void, any Error>) {
        let watchers = flights.withLock { flights -> [AsyncThrowingStream<PullEvent, any Error>.Continuation] in
            guard let flight = flights[digest], flight.id == id else { return [] }
            flights[digest] = nil
            return Array(flight.watchers.values)
        }
        for watcher in watchers {
            switch result {
            case .success: watcher.finish()
            case .failure(let error): watcher.finish(throwing: error)
            }
        }
    }

    private func leave(_ digest: Digest, watcher: UInt64) {
        flights.withLock { flights in
            guard var flight = flights[digest], flight.watchers.removeValue(forKey: watcher) != nil else { return }
            if flight.watchers.isEmpty && !flight.stopping {
                flight.stopping = true
                flight.task?.cancel()
            }
            flights[digest] = flight
        }
    }
}
