import Foundation
import Hummingbird

/// How Ollama's API reads a request's JSON body: bounded, strictly typed,
/// and every refusal an `APIError` 400 (or 413) in Ollama's words. `haul
/// serve`'s context uses it as its `requestDecoder`; the routes decode
/// through it whatever context mounts them, because these texts are part of
/// the API (Ollama's clients show them), not a choice of the embedder.
struct OllamaRequestDecoder: RequestDecoder {
    /// Requests are a model name and a few flags; nothing legitimate comes
    /// near this.
    static let maxBytes = 64 << 10

    func decode<T: Decodable>(_ type: T.Type, from request: Request, context: some RequestContext) async throws -> T {
        try await Self.decode(type, from: request)
    }

    /// `decode`, with its one error type.
    static func decode<T: Decodable>(_ type: T.Type, from request: Request) async throws(APIError) -> T {
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: maxBytes)
        } catch let error as any HTTPResponseError where error.status == .contentTooLarge {
            throw APIError(status: .contentTooLarge, message: "request body too large (limit \(maxBytes) bytes)")
        } catch {
            throw .badRequest("could not read request body")
        }
        let bytes = Data(buffer.readableBytesView)
        if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) {
            throw .badRequest("missing request body")
        }
        do {
            return try JSONDecoder().decode(T.self, from: bytes)
        } catch let error as DecodingError {
            throw .badRequest(describe(error))
        } catch {
            throw .badRequest("invalid request body: malformed JSON")
        }
    }

    private static func describe(_ error: DecodingError) -> String {
        func field(_ path: [any CodingKey]) -> String {
            path.isEmpty ? "the body" : "\"" + path.map(\.stringValue).joined(separator: ".") + "\""
        }
        switch error {
        case .typeMismatch(let type, let context), .valueNotFound(let type, let context):
            let what =
                type == String.self
                ? "a string"
                : type == Bool.self
                    ? "a boolean"
                    : context.codingPath.isEmpty ? "a JSON object" : "\(type)"
            return "invalid request body: \(field(context.codingPath)) must be \(what)"
        case .keyNotFound(let key, _):
            return "invalid request body: \"\(key.stringValue)\" is required"
        case .dataCorrupted(let context):
            return context.codingPath.isEmpty
                ? "invalid request body: malformed JSON"
                : "invalid request body: \(field(context.codingPath)) is invalid"
        @unknown default:
            return "invalid request body"
        }
    }
}

/// The model a request names: `model`, or the deprecated `name`.
protocol NamesModel {
    var model: String? { get }
    var name: String? { get }
}

extension NamesModel {
    var modelName: String {
        if let model, !model.isEmpty { return model }
        return name ?? ""
    }
}
