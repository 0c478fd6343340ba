import Dispatch
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Ctrl-C and `kill` without losing work: the first SIGINT or SIGTERM runs
/// `onFirst` (which stops the pull and writes its last checkpoint); a second
/// one exits at once, for a user who would rather not wait.
///
/// The dispatch sources stop with this object, so the command that installs
/// it keeps it alive for as long as it runs.
final class Interrupts {
    private final class Counter: Sendable {
        let value = Atomic<Int>(0)
    }

    private let counter = Counter()
    private var sources: [any DispatchSourceSignal] = []

    init(onFirst: @escaping @Sendable (Int32) -> Void) {
        let queue = DispatchQueue(label: "haul.signals")
        for signo in [SIGINT, SIGTERM] {
            // Dispatch sees the signal only once its default action is off.
            signal(signo, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signo, queue: queue)
            source.setEventHandler { [counter] in
                let n = counter.value.add(1, ordering: .relaxed).newValue
                if n == 1 { onFirst(signo) } else { _exit(128 + signo) }
            }
            source.resume()
            sources.append(source)
        }
    }

    var received: Bool { counter.value.load(ordering: .relaxed) > 0 }
}
