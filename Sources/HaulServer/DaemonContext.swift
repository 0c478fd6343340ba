import Foundation
import Hummingbird

/// The request context of every daemon route. Responses are JSON the way
/// Go's `encoding/json` writes Ollama's: slashes unescaped (model names and
/// URLs read as they do from Ollama).
struct DaemonContext: RequestContext {
    var coreContext: CoreRequestContextStorage

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
    }

    var responseEncoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        return encoder
    }
}
