import Dispatch
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Ctrl-C and `kill` without losing work: the first SIGINT or SIGTERM runs
/// `onFirst` (which stops the pull and writes its last checkpoint); a second
/// one exits at once, for a user who would rather not wait.
///
/// A plain signal handler writes the signal number to a pipe (the
/// self-pipe trick), and a dispatch source reads it. Dispatch's own signal
/// sources are not used: on Linux they only see a signal that every thread
/// blocks, and threads started before this object (the engine's, Swift's
/// executors) do not, so a signal could be delivered to one of them and
/// lost.
///
/// The read source stops with this object, so the command that installs it
/// keeps it alive for as long as it runs.
final class Interrupts {
    private final class Counter: Sendable {
        let value = Atomic<Int>(0)
    }

    private let counter = Counter()
    private let source: any DispatchSourceRead

    init(onFirst: @escaping @Sendable (Int32) -> Void) {
        let fd = interruptPipe.read
        source = DispatchSource.makeReadSource(fileDescriptor: fd, queue: DispatchQueue(label: "haul.signals"))
        source.setEventHandler { [counter] in
            var signals = [UInt8](repeating: 0, count: 16)
            let n = read(fd, &signals, signals.count)
            for signo in signals.prefix(max(0, n)) {
                let count = counter.value.add(1, ordering: .relaxed).newValue
                if count == 1 { onFirst(Int32(signo)) } else { _exit(128 + Int32(signo)) }
            }
        }
        source.resume()
        for signo in [SIGINT, SIGTERM] { signal(signo, forwardSignal) }
    }

    var received: Bool { counter.value.load(ordering: .relaxed) > 0 }
}

/// The pipe the handler writes to: created before any handler is installed,
/// so the handler only reads an initialised constant.
private let interruptPipe: (read: Int32, write: Int32) = {
    var fds: [Int32] = [-1, -1]
    guard pipe(&fds) == 0 else { fatalError("pipe: \(errno)") }
    for fd in fds {
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        _ = fcntl(fd, F_SETFL, O_NONBLOCK)
    }
    return (fds[0], fds[1])
}()

/// Async-signal-safe: one write(2) of the signal number.
/// errno is saved and restored: the handler may run between a failing
/// system call and the code that reads its errno.
private let forwardSignal: @convention(c) (Int32) -> Void = { signo in
    let saved = errno
    var byte = UInt8(truncatingIfNeeded: signo)
    _ = write(interruptPipe.write, &byte, 1)
    errno = saved
}
