import Foundation
import HaulKit

/// A fresh directory under /tmp, removed when the value is released.
package final class TempDir: Sendable {
    package let path: String

    package init(_ label: String = "haul") {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent(
            "\(label)-\(UUID().uuidString.prefix(8))")
        try! FileManager.default.createDirectory(at: base, withIntermediateDirectories: true)
        path = base.path
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    package func sub(_ name: String) -> String { path + "/" + name }
}

package struct RunResult {
    package let status: Int32
    package let stdout: String
    package let stderr: String
    package let seconds: Double
}

/// Runs a program to completion, capturing its output.
package func run(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) throws -> RunResult {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: executable)
    p.arguments = arguments
    var env = ProcessInfo.processInfo.environment
    for (k, v) in environment { env[k] = v }
    p.environment = env
    let out = Pipe()
    let err = Pipe()
    p.standardOutput = out
    p.standardError = err
    p.standardInput = FileHandle.nullDevice
    let start = Date()
    try p.run()
    // Drain both pipes concurrently so a chatty child never blocks.
    nonisolated(unsafe) var errData = Data()
    let group = DispatchGroup()
    group.enter()
    DispatchQueue.global().async {
        errData = err.fileHandleForReading.readDataToEndOfFile()
        group.leave()
    }
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    group.wait()
    p.waitUntilExit()
    return RunResult(
        status: p.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
        stderr: String(decoding: errData, as: UTF8.self), seconds: Date().timeIntervalSince(start))
}

/// The repository's `Tests` directory.
package let testsDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()

/// An unencrypted ed25519 key in Ollama's format (Tests/fixtures), for the
/// signed token flow.
package let ollamaTestKeyPath = testsDirectory.appendingPathComponent("fixtures/ollama_id_ed25519").path

/// The release `haul` binary that `make test` builds (HAUL_BIN), else the
/// debug one next to the tests.
package var haulBinary: String {
    if let bin = ProcessInfo.processInfo.environment["HAUL_BIN"] { return bin }
    let root = testsDirectory.deletingLastPathComponent()
    for config in ["release", "debug"] {
        let p = root.appendingPathComponent(".build/\(config)/haul").path
        if FileManager.default.isExecutableFile(atPath: p) { return p }
    }
    return root.appendingPathComponent(".build/debug/haul").path
}

package func haul(_ arguments: [String], models: String) throws -> RunResult {
    try run(haulBinary, arguments, environment: ["OLLAMA_MODELS": models])
}

/// `haul` under GNU time: its result, and its peak resident set in MiB.
package func haulMeasured(_ arguments: [String], models: String) throws -> (RunResult, peakMiB: Double) {
    let r = try run(
        "/usr/bin/time", ["-f", "peak-rss-kib %M", haulBinary] + arguments, environment: ["OLLAMA_MODELS": models])
    let kib = r.stderr.firstMatch(of: /peak-rss-kib (\d+)/).flatMap { Double($0.1) } ?? .infinity
    return (r, kib / 1024)
}

package func fileBytes(_ path: String) -> Data? { try? Data(contentsOf: URL(fileURLWithPath: path)) }

package func filesEqual(_ a: String, _ b: String) -> Bool {
    guard let x = FileManager.default.contents(atPath: a), let y = FileManager.default.contents(atPath: b) else {
        return false
    }
    return x == y
}

/// Collects every event of a library pull, or the error it ended with.
package func collect(_ stream: AsyncThrowingStream<PullEvent, any Error>) async -> ([PullEvent], (any Error)?) {
    var events: [PullEvent] = []
    do {
        for try await e in stream { events.append(e) }
        return (events, nil)
    } catch {
        return (events, error)
    }
}

/// All regular files below `root`, relative paths.
package func listFiles(_ root: String) -> [String] {
    guard let e = FileManager.default.enumerator(atPath: root) else { return [] }
    var out: [String] = []
    while let p = e.nextObject() as? String {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: root + "/" + p, isDirectory: &isDir), !isDir.boolValue {
            out.append(p)
        }
    }
    return out.sorted()
}

/// Byte-for-byte comparison of two large files without loading them.
package func sameContent(_ a: String, _ b: String) -> Bool {
    (try? run("/usr/bin/cmp", ["-s", a, b]).status) == 0
}

/// A process run in the background (output to files), to be interrupted
/// or killed while it works: `haul` by default, or any `executable`.
package final class BackgroundProcess {
    package let process = Process()
    private let outPath: String
    private let errPath: String

    package init(
        _ arguments: [String], executable: String = haulBinary, models: String, environment: [String: String] = [:],
        logs: TempDir
    ) throws {
        let tag = UUID().uuidString.prefix(6)
        outPath = logs.sub("out-\(tag)")
        errPath = logs.sub("err-\(tag)")
        FileManager.default.createFile(atPath: outPath, contents: nil)
        FileManager.default.createFile(atPath: errPath, contents: nil)
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        env["OLLAMA_MODELS"] = models
        for (k, v) in environment { env[k] = v }
        process.environment = env
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle(forWritingAtPath: outPath)
        process.standardError = FileHandle(forWritingAtPath: errPath)
        try process.run()
    }

    package func send(_ signal: Int32) { kill(process.processIdentifier, signal) }

    /// Waits for the exit; returns seconds waited.
    @discardableResult
    package func wait() -> Double {
        let start = Date()
        process.waitUntilExit()
        return Date().timeIntervalSince(start)
    }

    package var stdout: String { (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "" }
    package var stderr: String { (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "" }
}

/// Polls `condition` every 20 ms for up to `timeout` seconds.
package func waitUntil(timeout: Double = 30, _ condition: () async throws -> Bool) async throws -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if try await condition() { return true }
        try await Task.sleep(for: .milliseconds(20))
    }
    return false
}
