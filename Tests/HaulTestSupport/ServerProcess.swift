import Foundation

/// A test server process that prints one JSON line once it listens (its
/// ports) and exits when its stdin closes: so it also goes away when the
/// test process dies. Stopped when released.
package final class ServerProcess: @unchecked Sendable {
    // @unchecked: `process` and `stdin` are set once in init and only read
    // afterwards; Foundation's Process/Pipe are not marked Sendable.
    private let process = Process()
    private let stdin = Pipe()
    /// The first line the server printed, parsed.
    package let firstLine: [String: Any]

    package init(executable: String, arguments: [String], environment: [String: String] = [:]) throws {
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        }
        let stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        try process.run()
        var line = Data()
        let handle = stdout.fileHandleForReading
        while !line.contains(UInt8(ascii: "\n")) {
            let chunk = handle.availableData
            if chunk.isEmpty { throw TestFailure("\(arguments.first ?? executable) exited before listening") }
            line.append(chunk)
        }
        firstLine = try JSONSerialization.jsonObject(with: line) as? [String: Any] ?? [:]
    }

    deinit { stop() }

    package func stop() {
        try? stdin.fileHandleForWriting.close()
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
    }
}
