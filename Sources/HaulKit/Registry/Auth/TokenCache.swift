import Foundation
import Synchronization

/// Registry tokens, shared by every pull of one `Haul`: reused until
/// shortly before they expire, and fetched once when several pulls need the
/// same one at the same time.
///
/// A token is only ever reused for the registry it was obtained for and
/// with the same credentials: a registry whose 401 names another
/// registry's realm, service and scope gets a token of its own (or none),
/// never the cached one, and an anonymous pull never gets one obtained with
/// a password.
final class TokenCache: Sendable {
    struct Key: Hashable, Sendable {
        /// The registry's origin (`scheme://host:port`) the token is sent to.
        let registry: String
        /// Whose token it is (`RegistryCredentials.identity`, or "anonymous").
        let identity: String
        let realm: String
        let service: String
        let scope: String
    }

    struct Token: Sendable {
        let value: String
        /// Seconds since 1970 after which the token is not used again.
        let expires: Double
    }

    private enum Entry {
        case ready(Token)
        case fetching(Task<Token, any Error>)
    }

    private let entries = Mutex<[Key: Entry]>([:])

    /// A valid token for `key`: the cached one unless it is `rejected` or
    /// about to expire, else the one `fetch` gets (a fetch already running
    /// for the key is awaited instead of repeated).
    func token(
        for key: Key, rejected: String? = nil, now: Double = Date().timeIntervalSince1970,
        fetch: @escaping @Sendable () async throws -> Token
    ) async throws -> String {
        let task = entries.withLock { entries -> Task<Token, any Error> in
            switch entries[key] {
            case .ready(let token) where token.value != rejected && token.expires > now:
                return Task { token }
            case .fetching(let task):
                return task
            default:
                let task = Task { try await fetch() }
                entries[key] = .fetching(task)
                return task
            }
        }
        do {
            let token = try await task.value
            entries.withLock { entries in
                if case .fetching = entries[key] { entries[key] = .ready(token) }
            }
            return token.value
        } catch {
            entries.withLock { entries in
                if case .fetching = entries[key] { entries[key] = nil }
            }
            throw error
        }
    }
}
