import Foundation
import HaulKit
import Hummingbird
import Logging

/// How `/api/pull` and `/api/push` answer: Ollama's NDJSON stream of
/// progress lines, or with `stream: false` only the last line.
enum EventStream {
    /// The stream: one line per event, an `{"error": …}` line if the work
    /// fails after it started. The work runs in its own task, cancelled as
    /// soon as the response ends for any reason: a write that fails means
    /// the client left, and the work must learn it now, not whenever the
    /// framework releases this closure.
    static func response<Event: Sendable>(
        _ events: AsyncThrowingStream<Event, any Error>, lines: @escaping @Sendable (Event) -> String?,
        store: ModelStore, logger: Logger, what: String
    ) -> Response {
        let body = ResponseBody { writer in
            let (output, sink) = AsyncStream.makeStream(of: String.self)
            let pump = Task {
                do {
                    for try await event in events {
                        if let line = lines(event) { sink.yield(line) }
                    }
                    logger.info("\(what): \(Task.isCancelled ? "client left" : "success")")
                } catch {
                    let message = store.clientMessage(for: error)
                    logger.notice("\(what): \(message)")
                    sink.yield(ProgressJSON.error(message))
                }
                sink.finish()
            }
            defer { pump.cancel() }
            for await line in output {
                try await writer.write(ByteBuffer(string: line + "\n"))
            }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: [.contentType: "application/x-ndjson"], body: body)
    }

    /// `stream: false`: nothing until the work ends, then its last line,
    /// with 500 on failure (Ollama's rule).
    static func final<Event: Sendable>(
        _ events: AsyncThrowingStream<Event, any Error>, store: ModelStore, logger: Logger,
        what: String
    ) async throws(APIError) -> Response {
        do {
            for try await _ in events {}
            logger.info("\(what): success")
            return JSONResponse.bytes(Data(ProgressJSON.status("success").utf8))
        } catch {
            let message = store.clientMessage(for: error)
            logger.notice("\(what): \(message)")
            throw APIError(status: .internalServerError, message: message)
        }
    }
}
