import HaulKit
import Hummingbird

/// What clients probe before anything else: `GET /` ("Ollama is running",
/// which the `ollama` CLI checks), `GET /api/version`, and `GET /api/ps`.
struct InfoController {
    func addRoutes<Context: RequestContext>(to router: some RouterMethods<Context>) {
        router.get("/") { _, _ in Self.running() }
        router.head("/") { _, _ in Self.running() }
        router.get("/api/version") { _, _ in Version(version: Versions.ollama()) }
        router.head("/api/version") { _, _ in Response(status: .ok) }
        // Haul runs no models; clients poll this for what is loaded.
        router.get("/api/ps") { _, _ in Running(models: []) }
    }

    struct Version: GoJSONResponse {
        let version: String
    }

    /// Ollama's `ProcessResponse`; always empty here.
    struct Running: GoJSONResponse {
        let models: [String]
    }

    private static func running() -> Response {
        Response(
            status: .ok, headers: [.contentType: "text/plain; charset=utf-8"],
            body: ResponseBody(byteBuffer: ByteBuffer(string: "Ollama is running")))
    }
}
