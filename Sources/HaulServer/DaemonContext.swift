import Foundation
import HaulKit
import Hummingbird

/// The request context of `haul serve`'s own application. The routes work
/// with any context (an embedder mounts them in theirs), so they depend on
/// nothing here: their JSON is written by `GoJSONResponse`.
struct DaemonContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    /// Ollama's reading of request bodies, and its limit.
    var requestDecoder: OllamaRequestDecoder { OllamaRequestDecoder() }
    var maxUploadSize: Int { OllamaRequestDecoder.maxBytes }

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
    }
}

/// Every JSON response of Ollama's API: an `Encodable` value written the
/// way Go's `encoding/json` writes Ollama's structs (`OrderedJSONEncoder`:
/// fields in declaration order, slashes unescaped), whatever encoder the
/// request context mounting the routes would choose. (Hummingbird's
/// `ResponseEncodable` would hand the value to that context's encoder, whose
/// key order Foundation does not keep.)
protocol GoJSONResponse: Encodable, ResponseGenerator {
    /// 200 unless said otherwise.
    var status: HTTPResponse.Status { get }
}

extension GoJSONResponse {
    var status: HTTPResponse.Status { .ok }

    func response(from request: Request, context: some RequestContext) throws -> Response { try encoded() }

    /// The response, where a handler needs one before Hummingbird does.
    func encoded() throws(APIError) -> Response {
        do {
            return JSONResponse.bytes(try GoJSON.encode(self), status: status)
        } catch {
            throw APIError(status: .internalServerError, message: "could not encode the response: \(error)")
        }
    }
}

enum GoJSON {
    /// `value` as Go's `encoding/json` writes it.
    static func encode(_ value: some Encodable) throws -> Data { try OrderedJSONEncoder().encode(value) }
}
