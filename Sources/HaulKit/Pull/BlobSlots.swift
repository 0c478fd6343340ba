import Synchronization

/// A bound on blob downloads open at once across every pull of a `Haul`.
/// Each open download holds a preallocated file and a hashing thread, so a
/// manifest of thousands of layers (which a daemon client may name) must
/// not open them all at once; the rest wait their turn, first come first
/// served.
final class BlobSlots: Sendable {
    private struct State {
        var free: Int
        var waiters: [(id: UInt64, continuation: CheckedContinuation<Void, any Error>)] = []
        var nextID: UInt64 = 0
    }

    private let state: Mutex<State>

    init(count: Int) { state = Mutex(State(free: max(1, count))) }

    /// Runs `body` holding a slot; waiting for one can be cancelled.
    func withSlot<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        try await acquire()
        defer { release() }
        return try await body()
    }

    private func acquire() async throws {
        let id = state.withLock { s -> UInt64 in
            s.nextID += 1
            return s.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                enum Outcome { case granted, waiting, cancelled }
                let outcome = state.withLock { s -> Outcome in
                    if s.free > 0 {
                        s.free -= 1
                        return .granted
                    }
                    // Cancelled before it could wait: onCancel found nothing.
                    if Task.isCancelled { return .cancelled }
                    s.waiters.append((id, continuation))
                    return .waiting
                }
                switch outcome {
                case .granted: continuation.resume()
                case .cancelled: continuation.resume(throwing: CancellationError())
                case .waiting: break
                }
            }
        } onCancel: {
            let waiter = state.withLock { s -> CheckedContinuation<Void, any Error>? in
                guard let index = s.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                return s.waiters.remove(at: index).continuation
            }
            waiter?.resume(throwing: CancellationError())
        }
    }

    private func release() {
        let next = state.withLock { s -> CheckedContinuation<Void, any Error>? in
            if s.waiters.isEmpty {
                s.free += 1
                return nil
            }
            return s.waiters.removeFirst().continuation
        }
        next?.resume()
    }

    var available: Int { state.withLock { $0.free } }
}
