internal import CShims
import Foundation

/// The download engine: a loop thread driving curl, and a thread-safe front
/// that async callers use. One engine serves any number of concurrent pulls
/// under one connection budget.
final class Engine: Sendable {
    let configuration: EngineConfiguration
    private let inbox: LoopInbox

    init(configuration: EngineConfiguration, metrics: HaulMetrics = HaulMetrics()) {
        if configuration.debugTrace { DebugTrace.enable() }
        hl_global_init()
        self.configuration = configuration
        let inbox = LoopInbox()
        self.inbox = inbox
        let thread = Thread {
            EventLoop(inbox: inbox, config: configuration, metrics: OriginMetrics(metrics)).run()
        }
        thread.name = "haul-loop"
        thread.start()
    }

    deinit { inbox.send(.stop) }

    /// Performs a small request into memory.
    func fetch(_ request: HTTPRequest) async throws -> HTTPResponse {
        let id = inbox.nextID()
        let inbox = self.inbox
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                inbox.send(.fetch(id: id, request, continuation))
            }
        } onCancel: {
            inbox.send(.cancel(id: id))
        }
    }

    /// Downloads one blob into the job's file. Ending the iteration early
    /// (task cancellation) cancels the download.
    func download(_ job: BlobJob) -> AsyncStream<BlobEvent> {
        let id = inbox.nextID()
        let (stream, continuation) = AsyncStream.makeStream(of: BlobEvent.self, bufferingPolicy: .bufferingNewest(32))
        let inbox = self.inbox
        continuation.onTermination = { reason in
            if case .cancelled = reason { inbox.send(.cancel(id: id)) }
        }
        inbox.send(.download(id: id, job, continuation))
        return stream
    }
}
