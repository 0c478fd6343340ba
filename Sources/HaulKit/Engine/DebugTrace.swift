import Foundation

/// `HAUL_DEBUG=1` prints the loop's decisions (pieces, splits, endings) to
/// stderr with timestamps: the first thing to look at when a pull is slow.
enum DebugTrace {
    static let enabled = ProcessInfo.processInfo.environment["HAUL_DEBUG"] == "1"
    static let start = MonotonicClock.now()

    static func log(_ message: @autoclosure () -> String) {
        guard enabled else { return }
        let t = MonotonicClock.now() - start
        FileHandle.standardError.write(Data("[haul \(ByteFormat.oneDecimal(t))s] \(message())\n".utf8))
    }
}
