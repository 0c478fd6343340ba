import HaulKit
import Hummingbird
import Logging

/// `POST /api/push` (Ollama's `server/routes.go` `PushHandler`,
/// `server/images.go` `PushModel`): a stored model to the registry its
/// name names, with Ollama's NDJSON (`retrieving manifest`,
/// `pushing <12 hex>`, `pushing manifest`, `success`). It uses the
/// daemon's credentials for that registry and the daemon's rule for
/// private addresses, so only the clients the access rules let in can ask.
struct PushController {
    struct Body: Decodable, NamesModel {
        var model: String?
        var name: String?
        var insecure: Bool?
        var stream: Bool?
    }

    let haul: Haul
    let writes: WriteGuard
    let logger: Logger

    func addRoutes<Context: RequestContext>(to router: some RouterMethods<Context>) {
        router.post("/api/push") { request, _ in try await push(request) }
    }

    func push(_ request: Request) async throws(APIError) -> Response {
        try writes.authorize(request)
        let body = try await OllamaRequestDecoder.decode(Body.self, from: request)
        let text = body.modelName
        // Ollama's own message when neither field is given.
        guard !text.isEmpty else { throw .badRequest("model is required") }
        guard let parsed = try? ModelName(parsing: text) else { throw .badRequest("invalid model name") }
        try writes.allowPush(parsed, auth: haul.auth)
        logger.info("push \(parsed.displayShortest): started")
        // To the registry the name names, under the stored spelling.
        let events = haul.push(parsed, to: parsed, insecure: body.insecure ?? false)
        let what = "push \(parsed.displayShortest)"
        if body.stream ?? true {
            return EventStream.response(
                events, lines: { (event: PushEvent) in ProgressJSON.line(for: event) },
                store: haul.store, logger: logger, what: what)
        }
        return try await EventStream.final(events, store: haul.store, logger: logger, what: what)
    }
}
