import Foundation
import HaulKit
import Hummingbird

/// The rest of the model surface an Ollama pull client touches:
/// `GET /api/tags`, `POST /api/show`, `DELETE /api/delete`.
struct ModelRoutes: Sendable {
    let haul: Haul

    private struct TagsResponse: Encodable {
        struct Model: Encodable {
            let name: String
            let model: String
            let modified_at: String
            let size: Int64
            let digest: String
            let details: ModelDetails
        }
        let models: [Model]
    }

    /// Every stored model, newest first, with Ollama's fields: `digest` is
    /// the manifest's SHA-256 in hex, `size` the sum of its blobs.
    func tags() -> Response {
        let store = haul.store
        let models = store.list().map { model in
            TagsResponse.Model(name: model.name.displayShortest, model: model.name.displayShortest,
                               modified_at: Timestamp.rfc3339(model.modified), size: model.size,
                               digest: model.id.hex, details: store.details(of: model.manifest))
        }
        return encode(TagsResponse(models: models))
    }

    private struct NameBody: Decodable, NamesModel {
        var model: String?
        var name: String?
        var verbose: Bool?
    }

    private struct ShowResponse: Encodable {
        let license: String?
        let modelfile: String
        let parameters: String?
        let template: String?
        let system: String?
        let details: ModelDetails
        let model_info: [String: String]
        let capabilities: [String]
        let modified_at: String
    }

    func show(_ request: Request) async -> Response {
        do {
            let name = try await modelName(in: request)
            let store = haul.store
            let model = try store.model(name)
            let contents = try store.contents(of: name)
            return encode(ShowResponse(
                license: contents.licenses.isEmpty ? nil : contents.licenses.joined(separator: "\n"),
                modelfile: contents.modelfile,
                parameters: contents.parameters.isEmpty ? nil : contents.parametersText,
                template: contents.template.isEmpty ? nil : contents.template,
                system: contents.system.isEmpty ? nil : contents.system,
                details: contents.details, model_info: [:], capabilities: contents.capabilities,
                modified_at: Timestamp.rfc3339(model.modified)))
        } catch {
            return failure(error)
        }
    }

    /// Deletes the manifest and the blobs no other model uses; 200 with an
    /// empty body, as Ollama answers.
    func delete(_ request: Request) async -> Response {
        do {
            let name = try await modelName(in: request)
            // Deleting waits for the store's deletion lock: off the
            // cooperative pool.
            try await haul.remove(name)
            return Response(status: .ok)
        } catch {
            return failure(error)
        }
    }

    private func modelName(in request: Request) async throws -> ModelName {
        let body = try await RequestJSON.decode(NameBody.self, from: request)
        guard let name = try? ModelName(parsing: body.modelName) else {
            throw APIError.badRequest("name \(ProgressJSON.quote(String(body.modelName.prefix(256)))) is invalid")
        }
        return name
    }

    private func failure(_ error: any Error) -> Response {
        switch error {
        case let error as APIError:
            return error.response
        case HaulError.modelNotFound(let name):
            return JSONResponse.error("model '\(name)' not found", status: .notFound)
        default:
            return JSONResponse.error(haul.store.clientMessage(for: error), status: .internalServerError)
        }
    }

    private func encode(_ value: some Encodable) -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        guard let data = try? encoder.encode(value) else {
            return JSONResponse.error("could not encode the response", status: .internalServerError)
        }
        return Response(status: .ok, headers: [.contentType: "application/json; charset=utf-8"],
                        body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }
}

enum Timestamp {
    /// Go's `time.Time` JSON form (RFC 3339 with fractional seconds), in UTC.
    static func rfc3339(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: date)
    }
}
