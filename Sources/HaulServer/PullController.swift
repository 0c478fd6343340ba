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
    let writes: WriteGuard
    let logger: Logger

    func addRoutes<Context: RequestContext>(to router: some RouterMethods<Context>) {
        router.post("/api/pull") { request, _ in try await pull(request) }
    }

    func pull(_ request: Request) async throws(APIError) -> Response {
        try writes.authorize(request)
        let body = try await OllamaRequestDecoder.decode(Body.self, from: request)
        let name = body.modelName
        let parsed: ModelName
        do {
            parsed = try ModelName(pulling: name)
        } catch {
            // Ollama's 400s: the cloud model's text, or "invalid model name".
            throw .badRequest(error.description)
        }
        // An unknown runner is a 400 before anything starts (Ollama's
        // `normalizeRunner` in `PullHandler`).
        if let runner = body.runner, !runner.trimmingCharacters(in: .whitespaces).isEmpty,
            Runner.normalize(runner) == nil
        {
            throw .badRequest(HaulError.unknownRunner(runner).description)
        }
        logger.info("pull \(name): started")
        let events = haul.pull(parsed, insecure: body.insecure ?? false, runner: body.runner)
        if body.stream ?? true {
            return streaming(events, name: name)
        }
        return try await final(events, name: name)
    }

    private func streaming(_ events: AsyncThrowingStream<PullEvent, any Error>, name: String) -> Response {
        EventStream.response(
            events, lines: ProgressJSON.line(for:), store: haul.store, logger: logger, what: "pull \(name)")
    }

    private func final(_ events: AsyncThrowingStream<PullEvent, any Error>, name: String) async throws(APIError)
        -> Response
    {
        try await EventStream.final(events, store: haul.store, logger: logger, what: "pull \(name)")
    }
}
