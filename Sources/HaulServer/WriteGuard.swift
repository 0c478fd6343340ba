import Foundation
import HaulKit
import Hummingbird

/// What a client of the daemon may change or send on the operator's
/// behalf, decided route by route (README, "Who may do what"):
///
/// - reading (`/api/tags`, `/api/show`, `/api/version`, `/v1/models`,
///   `HEAD /api/blobs`) needs only the access rules, as with Ollama;
/// - writing the store or sending to a registry (`/api/pull`,
///   `/api/push`, `/api/copy`, `/api/delete`) needs the API token when one
///   is set (`HAUL_API_TOKEN`, else `HAUL_NODE_TOKEN`: a node that guards
///   `/v2/` guards its writes too), as `Authorization: Bearer` or the
///   password of Basic authentication;
/// - a push to a registry the daemon holds credentials for (an entry of
///   `HAUL_REGISTRY_AUTH` or docker's config, the Ollama key for the
///   public registry, the HF token for Hugging Face: see
///   `RegistryAuth.holdsCredentials`) is refused unless the operator listed that registry
///   in `HAUL_PUSH_REGISTRIES`: a client must not publish under the
///   operator's name by copying a model to it.
///
/// With neither variable set, Ollama's behaviour on loopback is kept: any
/// client the access rules let in may pull, copy, delete, and push where
/// the daemon holds no credentials.
struct WriteGuard: Sendable {
    let token: String?
    let pushRegistries: Set<String>

    init(_ writes: HaulDaemon.Writes) {
        token = writes.token
        pushRegistries = Set(writes.pushRegistries.map { $0.lowercased() })
    }

    /// Returns when the request may write; else throws the 401 to answer.
    func authorize(_ request: Request) throws(APIError) {
        guard let token else { return }
        if BearerToken.matches(request, token) { return }
        throw APIError(
            status: .unauthorized,
            message: "unauthorized: this daemon needs its API token to change models or send them to a registry")
    }

    /// Returns when a client may push `name` with what `auth` holds for its
    /// registry; else throws the 403 to answer.
    func allowPush(_ name: ModelName, auth: RegistryAuth) throws(APIError) {
        let registry = name.host.lowercased()
        guard auth.holdsCredentials(for: name), !pushRegistries.contains(registry) else { return }
        throw APIError(
            status: .forbidden,
            message: "this daemon holds credentials for \(registry) and does not push there for its clients; "
                + "its operator can allow it with HAUL_PUSH_REGISTRIES=\(registry)")
    }
}

/// The token a request offers, as `Authorization: Bearer <token>` or as
/// the password of `Authorization: Basic`, compared in constant time.
enum BearerToken {
    static func matches(_ request: Request, _ token: String) -> Bool {
        constantTimeEqual(Array(offered(request).utf8), Array(token.utf8))
    }

    static func offered(_ request: Request) -> String {
        let header = request.headers[.authorization] ?? ""
        if header.lowercased().hasPrefix("bearer ") {
            return String(header.dropFirst(7)).trimmingCharacters(in: .whitespaces)
        }
        if header.lowercased().hasPrefix("basic "),
            let decoded = Data(base64Encoded: String(header.dropFirst(6)).trimmingCharacters(in: .whitespaces)),
            let pair = String(data: decoded, encoding: .utf8), let colon = pair.firstIndex(of: ":")
        {
            return String(pair[pair.index(after: colon)...])
        }
        return ""
    }

    private static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var difference = UInt8(a.count == b.count ? 0 : 1)
        for i in 0..<max(a.count, b.count) {
            difference |= (i < a.count ? a[i] : 0) ^ (i < b.count ? b[i] : 0)
        }
        return difference == 0
    }
}
