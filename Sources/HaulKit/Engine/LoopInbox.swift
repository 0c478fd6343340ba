internal import CShims
import Synchronization

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
/// command queue, and the curl multi handle, whose `curl_multi_wakeup` (the
/// one multi call that is safe from any thread) ends the loop's poll.
final class LoopInbox: Sendable {
    private struct State {
        var commands: [LoopCommand] = []
        /// Nil once the loop has cleaned the handle up: a late `send` (a
        /// stream terminated after the engine stopped) must not touch it.
        var multi: OpaquePointer?
    }

    private let state: Mutex<State>
    private let ids = Atomic<UInt64>(1)
    /// The loop thread's handle; only the loop uses it for anything but
    /// waking.
    nonisolated(unsafe) let multi: OpaquePointer

    init() {
        // Safe to share: OpaquePointer is only compared or passed to curl,
        // and every use but curl_multi_wakeup happens on the loop thread.
        let handle = curl_multi_init()!
        multi = handle
        state = Mutex(State(multi: handle))
    }

    func nextID() -> UInt64 { ids.wrappingAdd(1, ordering: .relaxed).oldValue }

    func send(_ command: LoopCommand) {
        state.withLock { s in
            s.commands.append(command)
            if let multi = s.multi { _ = curl_multi_wakeup(multi) }
        }
    }

    func drain() -> [LoopCommand] {
        state.withLock { s in
            let commands = s.commands
            s.commands.removeAll(keepingCapacity: true)
            return commands
        }
    }

    /// Called by the loop as it stops: no wakeup reaches the handle after.
    func closeMulti() {
        state.withLock { s in
            if let multi = s.multi { curl_multi_cleanup(multi) }
            s.multi = nil
        }
    }
}
