import Foundation
import HaulKit
import Hummingbird

/// `POST /api/copy` and `HEAD /api/blobs/:digest`, as Ollama's
/// `server/routes.go` answers them (`CopyHandler`, `HeadBlobHandler`): a
/// copy is a second manifest naming the same blobs, never a blob copied.
struct CopyController {
    let haul: Haul
    let writes: WriteGuard

    func addRoutes<Context: RequestContext>(to router: some RouterMethods<Context>) {
        router.post("/api/copy") { request, _ in try await copy(request) }
        router.head("/api/blobs/:digest") { _, context in try blob(context.parameters.get("digest") ?? "") }
    }

    private struct Body: Decodable {
        var source: String?
        var destination: String?
    }

    private func copy(_ request: Request) async throws(APIError) -> Response {
        try writes.authorize(request)
        let body = try await OllamaRequestDecoder.decode(Body.self, from: request)
        let source = body.source ?? ""
        let destination = body.destination ?? ""
        guard let from = try? ModelName(parsing: source) else {
            throw .badRequest("source \(String(source.prefix(256)).goQuoted) is invalid")
        }
        guard let to = try? ModelName(parsing: destination) else {
            throw .badRequest("destination \(String(destination.prefix(256)).goQuoted) is invalid")
        }
        do {
            try await haul.copy(from, to: to)
            return Response(status: .ok)
        } catch .modelNotFound {
            // CopyHandler quotes with %q, unlike ShowHandler's '%s'.
            throw APIError(status: .notFound, message: "model \(source.goQuoted) not found")
        } catch {
            throw APIError(error, store: haul.store, asked: source)
        }
    }

    /// 200 when the blob is stored (Haul stores a blob only once verified),
    /// 404 when not, 400 for a digest that is not one (Ollama's
    /// `GetBlobsPath` takes `sha256:` or `sha256-` and 64 hex digits).
    private func blob(_ text: String) throws(APIError) -> Response {
        let normalized = text.hasPrefix("sha256-") ? "sha256:" + text.dropFirst(7) : text
        guard let digest = try? Digest(parsing: normalized.lowercased()) else {
            throw .badRequest("invalid digest format")
        }
        guard FileManager.default.fileExists(atPath: haul.store.blobPath(digest)) else {
            throw APIError(status: .notFound, message: "blob \(text.goQuoted) not found")
        }
        return Response(status: .ok)
    }
}
