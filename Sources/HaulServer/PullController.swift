import HaulKit
import Hummingbird
import Logging

/// `POST /api/pull` (Ollama's `server/routes.go` `PullHandler`, `api/types.go` `PullRequest`): Ollama's request, status codes and
/// NDJSON event stream over a Haul pull. Pulls of the same blobs from
/// different requests share one download (see `Haul`); each request
/// streams its own progress, and a client that disconnects cancels only
/// its own interest in the download.
struct PullController {
    struct Body: Decodable, NamesModel {
        var model: String?
        var name: String?
        var insecure: Bool?
        var stream: Bool?
        /// A list child's runner (Ollama ≥ 0.40), by Ollama's aliases.
        var runner: String?
        // `username` and `password` are accepted and ignored, as by Ollama.
    }

    let haul: Haul
    let logger: Logger

    func addRoutes<Context: RequestContext>(to router: some RouterMethods<Context>) {
        router.post("/api/pull") { request, _ in try await pull(request) }
    }

    func pull(_ request: Request) async throws(APIError) -> Response {
        let body = try await RequestJSON.decode(Body.self, from: request)
        let name = body.modelName
        if ModelName.isCloudReference(name) { throw .badRequest(HaulError.cloudModel(name).description) }
        guard let parsed = try? ModelName(parsing: name) else { throw .badRequest("invalid model name") }
        // An unknown runner is a 400 before anything starts (Ollama's
        // `normalizeRunner` in `PullHandler`).
        if let runner = body.runner, !runner.trimmingCharacters(in: .whitespaces).isEmpty, Runner.normalize(runner) == nil {
            throw .badRequest(HaulError.unknownRunner(runner).description)
        }
        logger.info("pull \(name): started")
        let events = haul.pull(parsed, insecure: body.insecure ?? false, runner: body.runner)
        if body.stream ?? true {
            return streaming(events, name: name)
        }
        return try await final(events, name: name)
    }

    /// The stream: one line per event, an `{"error": …}` line if the pull
    /// fails after it started. The pull runs in its own task, cancelled as
    /// soon as the response ends for any reason: a write that fails means
    /// the client left, and the pull must learn it now, not whenever the
    /// framework releases this closure.
    private func streaming(_ events: AsyncThrowingStream<PullEvent, any Error>, name: String) -> Response {
        let store = haul.store
        let logger = logger
        let body = ResponseBody { writer in
            let (lines, sink) = AsyncStream.makeStream(of: String.self)
            let pump = Task {
                do {
                    for try await event in events {
                        if let line = ProgressJSON.line(for: event) { sink.yield(line) }
                    }
                    logger.info("pull \(name): \(Task.isCancelled ? "client left" : "success")")
                } catch {
                    let message = store.clientMessage(for: error)
                    logger.notice("pull \(name): \(message)")
                    sink.yield(ProgressJSON.error(message))
                }
                sink.finish()
            }
            defer { pump.cancel() }
            for await line in lines {
                try await writer.write(ByteBuffer(string: line + "\n"))
            }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: [.contentType: "application/x-ndjson"], body: body)
    }

    /// `stream: false`: nothing until the pull ends, then its last line,
    /// with 500 on failure (Ollama's rule).
    private func final(_ events: AsyncThrowingStream<PullEvent, any Error>, name: String) async throws(APIError) -> Response {
        do {
            for try await _ in events {}
            logger.info("pull \(name): success")
            return JSONResponse.text(ProgressJSON.status("success"))
        } catch {
            let message = haul.store.clientMessage(for: error)
            logger.notice("pull \(name): \(message)")
            throw APIError(status: .internalServerError, message: message)
        }
    }
}
