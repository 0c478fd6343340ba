import HaulKit
import Hummingbird

/// A request the API refuses before doing anything: the status and the
/// `{"error": …}` text Ollama would answer with.
struct APIError: Error {
    let status: HTTPResponse.Status
    let message: String

    static func badRequest(_ message: String) -> APIError { APIError(status: .badRequest, message: message) }

    var response: Response { JSONResponse.error(message, status: status) }
}

enum JSONResponse {
    /// `{"error": message}` as `application/json`.
    static func error(_ message: String, status: HTTPResponse.Status) -> Response {
        text(ProgressJSON.error(message), status: status)
    }

    static func text(_ json: String, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json; charset=utf-8"],
                 body: ResponseBody(byteBuffer: ByteBuffer(string: json)))
    }
}

extension ModelStore {
    /// An error's text for a client of the daemon: the models directory is
    /// the daemon's business, so it is named, not shown.
    func clientMessage(for error: any Error) -> String {
        let text = (error as? HaulError)?.description ?? "\(error)"
        return text.replacingOccurrences(of: root, with: "$OLLAMA_MODELS")
    }
}
