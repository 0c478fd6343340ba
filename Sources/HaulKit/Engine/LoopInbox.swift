import Synchronization
internal import CShims
#if canImport(Glibc)
import Glibc
#endif

/// What async callers ask of the loop thread.
enum LoopCommand: Sendable {
    case fetch(id: UInt64, HTTPRequest, CheckedContinuation<HTTPResponse, any Error>)
    case download(id: UInt64, BlobJob, AsyncStream<BlobEvent>.Continuation)
    case cancel(id: UInt64)
    case stop
}

/// The only state shared between the loop thread and everyone else: a locked
/// command queue and an eventfd that wakes the loop's poll.
final class LoopInbox: Sendable {
    private let queue = Mutex<[LoopCommand]>([])
    private let ids = Atomic<UInt64>(1)
    let eventFD: Int32

    init() {
        eventFD = hl_eventfd()
        precondition(eventFD >= 0, "eventfd failed: errno \(errno)")
    }

    deinit { Glibc.close(eventFD) }

    func nextID() -> UInt64 { ids.wrappingAdd(1, ordering: .relaxed).oldValue }

    func send(_ command: LoopCommand) {
        queue.withLock { $0.append(command) }
        var one: UInt64 = 1
        _ = Glibc.write(eventFD, &one, 8)
    }

    func drain() -> [LoopCommand] {
        queue.withLock { q in
            let commands = q
            q.removeAll(keepingCapacity: true)
            return commands
        }
    }

    func clearWakeup() {
        var value: UInt64 = 0
        _ = Glibc.read(eventFD, &value, 8)
    }
}
