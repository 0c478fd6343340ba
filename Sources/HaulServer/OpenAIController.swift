import Foundation
import HaulKit
import Hummingbird

/// The model endpoints of Ollama's OpenAI compatibility layer
/// (`openai/openai.go`: `ToListCompletion`, `ToModel`; errors through its
/// `writeError`, which types every relayed error `api_error`), which
/// OpenAI clients and Open WebUI list models with.
struct OpenAIController {
    let haul: Haul

    func addRoutes<Context: RequestContext>(to router: some RouterMethods<Context>) {
        router.get("/v1/models") { _, _ in list() }
        router.get("/v1/models/:model") { _, context in retrieve(context.parameters.get("model") ?? "") }
    }

    private func list() -> Response {
        let models = haul.store.list()
        // Go encodes an empty (nil) slice as null, and Ollama's list is one.
        let data =
            models.isEmpty
            ? "null" : "[" + models.map { entry($0.name.displayShortest, $0) }.joined(separator: ",") + "]"
        return JSONResponse.text("{\"object\":\"list\",\"data\":\(data)}")
    }

    private func retrieve(_ text: String) -> Response {
        guard let name = try? ModelName(parsing: text), let model = try? haul.store.model(name) else {
            let message = "model '\(text)' not found"
            return JSONResponse.text(
                "{\"error\":{\"message\":\(ProgressJSON.quote(message)),\"type\":\"api_error\",\"param\":null,\"code\":null}}",
                status: .notFound)
        }
        return JSONResponse.text(entry(text, model))
    }

    /// `id` is the name as listed (or as asked for), `owned_by` its namespace.
    private func entry(_ id: String, _ model: LocalModel) -> String {
        "{\"id\":\(ProgressJSON.quote(id)),\"object\":\"model\",\"created\":\(Int64(model.modified.timeIntervalSince1970)),"
            + "\"owned_by\":\(ProgressJSON.quote(model.name.namespace))}"
    }
}
