import Foundation
import HaulKit
import Hummingbird

/// A request the API refuses or a model operation that failed: the status
/// and the `{"error": …}` text Ollama answers with. Handlers throw it and
/// Hummingbird turns it into the response.
struct APIError: HTTPResponseError {
    let status: HTTPResponse.Status
    let message: String

    static func badRequest(_ message: String) -> APIError { APIError(status: .badRequest, message: message) }

    /// A failure from the library, worded for a client of the daemon: a
    /// missing model is a 404 quoting the name as the client `asked` for it
    /// (Ollama's `ShowHandler`, `DeleteHandler`: `model '%s' not found`);
    /// anything else is a 500 that names `$OLLAMA_MODELS` instead of
    /// showing it.
    init(_ error: any Error, store: ModelStore, asked: String) {
        switch error {
        case let error as APIError:
            self = error
        case HaulError.modelNotFound:
            self.init(status: .notFound, message: "model '\(asked)' not found")
        case HaulError.noCompatibleManifest, HaulError.unknownRunner:
            // Ollama's `writeShowError`: a runner the model has no child for is the client's mistake.
            self.init(status: .badRequest, message: HaulError.text(of: error))
        default:
            self.init(status: .internalServerError, message: store.clientMessage(for: error))
        }
    }

    init(status: HTTPResponse.Status, message: String) {
        self.status = status
        self.message = message
    }

    /// Ollama's error body.
    private struct Body: Encodable {
        let error: String
    }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        JSONResponse.bytes(try GoJSON.encode(Body(error: message)), status: status)
    }
}

enum JSONResponse {
    /// JSON already encoded.
    static func bytes(_ data: Data, status: HTTPResponse.Status = .ok) -> Response {
        Response(
            status: status, headers: [.contentType: "application/json; charset=utf-8"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }

}

extension ModelStore {
    /// An error's text for a client of the daemon: the models directory is
    /// the daemon's business, so it is named, not shown.
    func clientMessage(for error: any Error) -> String {
        let text = HaulError.text(of: error)
        return text.replacingOccurrences(of: root, with: "$OLLAMA_MODELS")
    }
}
