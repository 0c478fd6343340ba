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
        router.get("/v1/models/:model") { _, context in try retrieve(context.parameters.get("model") ?? "") }
    }

    /// `ListCompletion`.
    struct List: GoJSONResponse {
        let object = "list"
        /// Go encodes an empty (nil) slice as null, and Ollama's list is one.
        let data: [Model]?

        enum CodingKeys: String, CodingKey { case object, data }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(object, forKey: .object)
            if let data { try container.encode(data, forKey: .data) } else { try container.encodeNil(forKey: .data) }
        }
    }

    /// `Model`: `id` is the name as listed (or as asked for), `owned_by`
    /// its namespace.
    struct Model: GoJSONResponse {
        let id: String
        let object = "model"
        let created: Int64
        let owned_by: String

        init(_ id: String, _ model: LocalModel) {
            self.id = id
            created = Int64(model.modified.timeIntervalSince1970)
            owned_by = model.name.namespace
        }
    }

    /// OpenAI's error document (`ErrorResponse`), every field present.
    struct OpenAIError: HTTPResponseError {
        let status: HTTPResponse.Status
        let message: String

        private struct Body: Encodable {
            struct Detail: Encodable {
                let message: String
                let type = "api_error"
                let param: String? = nil
                let code: String? = nil

                enum CodingKeys: String, CodingKey { case message, type, param, code }

                func encode(to encoder: any Encoder) throws {
                    var container = encoder.container(keyedBy: CodingKeys.self)
                    try container.encode(message, forKey: .message)
                    try container.encode(type, forKey: .type)
                    try container.encodeNil(forKey: .param)
                    try container.encodeNil(forKey: .code)
                }
            }
            let error: Detail
        }

        func response(from request: Request, context: some RequestContext) throws -> Response {
            JSONResponse.bytes(try GoJSON.encode(Body(error: .init(message: message))), status: status)
        }
    }

    private func list() -> List {
        let models = haul.store.list()
        return List(data: models.isEmpty ? nil : models.map { Model($0.name.displayShortest, $0) })
    }

    private func retrieve(_ text: String) throws(OpenAIError) -> Model {
        guard let name = try? ModelName(parsing: text), let model = try? haul.store.model(name) else {
            throw OpenAIError(status: .notFound, message: "model '\(text)' not found")
        }
        return Model(text, model)
    }
}
