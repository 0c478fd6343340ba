import Foundation
import Hummingbird

/// The request context of `haul serve`'s own application. The routes work
/// with any context (an embedder mounts them in theirs), so they depend on
/// nothing here: their JSON is written by `GoJSONResponse`.
struct DaemonContext: RequestContext {
    var coreContext: CoreRequestContextStorage

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
    }
}

/// A response body in JSON the way Go's `encoding/json` writes Ollama's:
/// slashes unescaped, so model names and URLs read as they do from Ollama,
/// whatever encoder the request context would choose.
protocol GoJSONResponse: Encodable, ResponseGenerator {}

extension GoJSONResponse {
    func response(from request: Request, context: some RequestContext) throws -> Response {
        JSONResponse.bytes(try GoJSON.encode(self))
    }
}

enum GoJSON {
    /// `value` as Go's `encoding/json` writes it (slashes unescaped).
    static func encode(_ value: some Encodable) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        return try encoder.encode(value)
    }
}
