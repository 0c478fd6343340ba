import Foundation
import HaulTestSupport
import Synchronization
import Testing

@testable import HaulKit

/// Bounds that keep a broken or hostile peer (a daemon, a manifest with
/// thousands of layers) from crashing Haul or taking its memory, and the
/// ordering guarantees of shared downloads.
@Suite struct LimitsTests {
    static let digest = Digest(bytes: SHA256.hash(Array("x".utf8)))

    @Test func aDaemonsImpossibleNumbersAreRefusedOrClamped() throws {
        func line(total: Int64, completed: Int64) -> [UInt8] {
            Array(
                "{\"status\":\"pulling \(Self.digest.short)\",\"digest\":\"\(Self.digest)\",\"total\":\(total),\"completed\":\(completed)}"
                    .utf8)
        }
        #expect(throws: HaulError.self) { try ProgressJSON.parse(line(total: -5, completed: 0)) }
        #expect(throws: HaulError.self) { try ProgressJSON.parse(line(total: Int64.max, completed: 0)) }
        guard case .event(.progress(let p))? = try ProgressJSON.parse(line(total: 100, completed: 1000)) else {
            Issue.record("no progress event")
            return
        }
        #expect(p.completed == 100 && p.total == 100)
        guard case .event(.progress(let q))? = try ProgressJSON.parse(line(total: 100, completed: -7)) else {
            Issue.record("no progress event")
            return
        }
        #expect(q.completed == 0)
    }

    @Test func aLineWithoutEndIsCutOffAtTheLimit() throws {
        var splitter = LineSplitter(limit: 16)
        #expect(try splitter.feed(Array("ab\ncd".utf8)) == [Array("ab".utf8)])
        #expect(try splitter.feed(Array("e\n\nf".utf8)) == [Array("cde".utf8), []])
        #expect(splitter.rest == Array("f".utf8))
        #expect(throws: HaulError.self) { try splitter.feed([UInt8](repeating: 0x41, count: 32)) }
    }

    @Test func openBlobsAreBounded() async throws {
        final class Gauge: Sendable {
            let state = Mutex((open: 0, peak: 0))
            func enter() {
                state.withLock {
                    $0.open += 1
                    $0.peak = max($0.peak, $0.open)
                }
            }
            func leave() { state.withLock { $0.open -= 1 } }
        }
        let slots = BlobSlots(count: 3)
        let gauge = Gauge()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<20 {
                group.addTask {
                    try await slots.withSlot {
                        gauge.enter()
                        try await Task.sleep(for: .milliseconds(5))
                        gauge.leave()
                    }
                }
            }
            try await group.waitForAll()
        }
        let most = gauge.state.withLock { $0.peak }
        #expect(most == 3)
        #expect(slots.available == 3)
        // A waiter that is cancelled leaves the queue.
        let held = Task { try await slots.withSlot { try await Task.sleep(for: .seconds(60)) } }
        let a = Task { try await slots.withSlot { try await Task.sleep(for: .seconds(60)) } }
        let b = Task { try await slots.withSlot { try await Task.sleep(for: .seconds(60)) } }
        try await Task.sleep(for: .milliseconds(50))
        let waiting = Task { try await slots.withSlot {} }
        try await Task.sleep(for: .milliseconds(50))
        waiting.cancel()
        await #expect(throws: CancellationError.self) { try await waiting.value }
        for t in [held, a, b] { t.cancel() }
        for t in [held, a, b] { _ = await t.result }
        #expect(slots.available == 3)
    }

    /// A pull that is cancelled ends only after the download it was the
    /// last to watch has stopped (its checkpoint written, its lock let go).
    @Test func aCancelledWatcherEndsAfterItsDownloadStopped() async throws {
        for _ in 0..<20 {
            let downloads = SharedDownloads()
            let stopped = Mutex(false)
            let started = Mutex(false)
            let pull = Task {
                let watch = downloads.join(Self.digest) { _ in
                    started.withLock { $0 = true }
                    try? await Task.sleep(for: .seconds(60))
                    // Letting go takes a while (a final checkpoint).
                    usleep(100_000)
                    stopped.withLock { $0 = true }
                }
                for try await _ in watch.events {}
                await downloads.settle(watch)
            }
            #expect(try await waitUntil(timeout: 120) { started.withLock { $0 } })
            pull.cancel()
            _ = await pull.result
            let done = stopped.withLock { $0 }
            #expect(done, "the pull ended while its download still ran")
        }
    }
}
