import Foundation

/// Talks to an Ollama-style (Docker Registry v2) registry for one model:
/// fetches its manifest and builds blob URLs.
struct RegistryClient: Sendable {
    static let manifestAccept = "Accept: " + Manifest.mediaTypes.joined(separator: ", ")

    let engine: Engine
    let name: ModelName
    let insecure: Bool

    /// `--insecure` means plain HTTP, as in Ollama; TLS is never weakened.
    var baseURL: String {
        let scheme = insecure ? "http" : (name.scheme ?? "https")
        return "\(scheme)://\(name.host)"
    }

    var manifestURL: String { "\(baseURL)/v2/\(name.repository)/manifests/\(name.tag)" }

    func blobURL(_ digest: Digest) -> String { "\(baseURL)/v2/\(name.repository)/blobs/\(digest)" }

    /// Headers for requests to the registry host itself (never a CDN).
    var registryHeaders: [String] { [] }

    func fetchManifest() async throws -> Manifest {
        if name.scheme == "http" && !insecure {
            throw HaulError.manifestUnreachable(url: manifestURL, message: "insecure protocol http")
        }
        let response: HTTPResponse
        do {
            response = try await engine.fetch(HTTPRequest(url: manifestURL,
                                                          headers: registryHeaders + [Self.manifestAccept],
                                                          followRedirects: true, limit: Manifest.maxBytes))
        } catch let HaulError.network(url, message) {
            throw HaulError.manifestUnreachable(url: url, message: message)
        }
        switch response.status {
        case 200:
            return try Manifest(bytes: response.body)
        case 404:
            throw HaulError.manifestNotFound
        case 401:
            throw HaulError.manifestStatus(401, body: "unauthorized: access denied")
        default:
            throw HaulError.manifestStatus(response.status, body: Self.errorText(response.body))
        }
    }

    /// A registry error body, trimmed for a message: the `message` of an OCI
    /// error document when there is one, else the text itself.
    static func errorText(_ body: [UInt8]) -> String {
        let text = String(decoding: body.prefix(2048), as: UTF8.self)
        if let range = text.range(of: "\"message\":\""),
           let end = text[range.upperBound...].firstIndex(of: "\"") {
            return HaulError.quoted(String(text[range.upperBound..<end]), limit: 300)
        }
        return HaulError.quoted(text.trimmingCharacters(in: .whitespacesAndNewlines), limit: 300)
    }
}
