import Foundation
import Synchronization

/// `EngineConfiguration.debugTrace` (`HAUL_DEBUG=1`) prints the loop's
/// decisions (pieces, splits, endings) to stderr with timestamps: the first
/// thing to look at when a pull is slow. Process-wide, since the loop, the
/// hashers and the store all trace, and off until an engine turns it on.
enum DebugTrace {
    private static let isOn = Atomic<Bool>(false)
    static let start = MonotonicClock.now()

    static var enabled: Bool { isOn.load(ordering: .relaxed) }

    static func enable() { isOn.store(true, ordering: .relaxed) }

    static func log(_ message: @autoclosure () -> String) {
        guard enabled else { return }
        let t = MonotonicClock.now() - start
        FileHandle.standardError.write(Data("[haul \(ByteFormat.oneDecimal(t))s] \(message())\n".utf8))
    }
}
