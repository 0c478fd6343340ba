import Dispatch
import Synchronization

/// Where file-system work that can block goes: fdatasync and fsync at
/// commit, flock waits on the store's deletion lock, preallocating a large
/// file. Swift's cooperative pool has one thread per core; a call that
/// parks one of them for the length of a disk flush stalls every pull and
/// every daemon request behind it, so async code hands such calls to these
/// threads and awaits the result.
enum BlockingIO {
    private static let queue = DispatchQueue(label: "haul.blocking-io", qos: .utility, attributes: .concurrent)

    static func run<T: Sendable>(_ body: @escaping @Sendable () throws(HaulError) -> T) async throws(HaulError) -> T {
        let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<T, HaulError>, Never>) in
            queue.async { continuation.resume(returning: Result { () throws(HaulError) in try body() }) }
        }
        return try result.get()
    }

    /// Runs `body` there; cancelling the calling task sets the flag `body`
    /// checks between units of work (a request whose client left stops).
    static func runCancellable<T: Sendable>(_ body: @escaping @Sendable (CancellationFlag) throws(HaulError) -> T)
        async throws(HaulError) -> T
    {
        let flag = CancellationFlag()
        let result = await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Result<T, HaulError>, Never>) in
                queue.async { continuation.resume(returning: Result { () throws(HaulError) in try body(flag) }) }
            }
        } onCancel: {
            flag.cancel()
        }
        return try result.get()
    }

    /// Set when the task that started blocking work is cancelled.
    final class CancellationFlag: Sendable {
        private let cancelled = Atomic<Bool>(false)
        func cancel() { cancelled.store(true, ordering: .relaxed) }
        /// Throws `cancelled` once the task was cancelled.
        func check() throws(HaulError) {
            if cancelled.load(ordering: .relaxed) { throw .cancelled }
        }
    }

    /// Runs `body` there with `value`, which it takes over (a descriptor
    /// moves to the thread that uses it; it is never shared).
    static func run<V: ~Copyable & Sendable, T: Sendable>(
        with value: consuming V, _ body: @escaping @Sendable (consuming V) throws(HaulError) -> T
    ) async throws(HaulError) -> T {
        let handoff = Handoff(value)
        return try await run { () throws(HaulError) in try body(handoff.take()) }
    }

    /// Carries a noncopyable value into one closure, exactly once.
    private final class Handoff<V: ~Copyable & Sendable>: Sendable {
        private let slot: Mutex<V?>
        init(_ value: consuming V) { slot = Mutex(Optional(value)) }
        func take() -> V { slot.withLock { $0.take() }! }
    }
}
