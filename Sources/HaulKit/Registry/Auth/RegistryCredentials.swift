import Foundation

/// A username and password for one registry.
public struct RegistryCredentials: Sendable, Equatable {
    /// The user name.
    public let username: String
    /// The password or token; never printed.
    public let password: String

    /// A username and password.
    public init(username: String, password: String) {
        self.username = username
        self.password = password
    }

    /// `user:password`, as `HAUL_REGISTRY_AUTH` and docker's `auth` hold it.
    init?(pair: String) {
        guard let colon = pair.firstIndex(of: ":"), colon != pair.startIndex else { return nil }
        self.init(username: String(pair[..<colon]), password: String(pair[pair.index(after: colon)...]))
    }

    /// Who a token was obtained as, without the secret itself: tokens are
    /// cached per identity, so one obtained with these credentials is never
    /// handed to a pull that has others, or none.
    var identity: String {
        "user " + username + " " + Digest(bytes: SHA256.hash(Array("\(username):\(password)".utf8))).hex.prefix(16)
    }

    var basicAuthorization: String {
        "Basic " + Data("\(username):\(password)".utf8).base64EncodedString()
    }
}

/// Where registry credentials come from, most specific first:
/// `--username/--password-stdin` (bound to the registry being pulled from),
/// `HAUL_REGISTRY_AUTH=HOST=USER:PASSWORD` (several, separated by commas or
/// newlines), then the `auths` of `~/.docker/config.json` by registry host
/// (what `docker login` writes).
///
/// Every credential belongs to one registry host: it answers a 401 from
/// that host (and the token realm that host names), never one from any
/// other, so a model name a daemon client chose cannot collect it. Never
/// sent to a CDN either.
public struct CredentialSource: Sendable {
    /// Credentials by registry host (`name[:port]`, lower case).
    public var explicit: [String: RegistryCredentials]
    /// A docker `config.json` whose `auths` are read for registries not in `explicit`; nil reads none.
    public var dockerConfigPath: String?

    /// Credentials from explicit values; none by default.
    public init(explicit: [String: RegistryCredentials] = [:], dockerConfigPath: String? = nil) {
        self.explicit = explicit
        self.dockerConfigPath = dockerConfigPath
    }

    /// Reads `HAUL_REGISTRY_AUTH` and `DOCKER_CONFIG`/`HOME`. A malformed
    /// `HAUL_REGISTRY_AUTH` gives no credentials here; commands call
    /// `parse(registryAuth:)` first to report it.
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment)
        -> CredentialSource
    {
        let explicit = (try? parse(registryAuth: environment["HAUL_REGISTRY_AUTH"] ?? "")) ?? [:]
        let dockerDir = environment["DOCKER_CONFIG"] ?? ((environment["HOME"] ?? NSHomeDirectory()) + "/.docker")
        return CredentialSource(explicit: explicit, dockerConfigPath: dockerDir + "/config.json")
    }

    /// `HOST=USER:PASSWORD[,HOST=USER:PASSWORD…]` (commas or newlines). A
    /// password holding a comma goes through `--password-stdin` or docker's
    /// config instead.
    public static func parse(registryAuth text: String) throws(HaulError) -> [String: RegistryCredentials] {
        var out: [String: RegistryCredentials] = [:]
        for entry in text.split(whereSeparator: { $0 == "," || $0 == "\n" }) {
            let entry = entry.trimmingCharacters(in: .whitespaces)
            if entry.isEmpty { continue }
            guard let eq = entry.firstIndex(of: "="),
                let credentials = RegistryCredentials(pair: String(entry[entry.index(after: eq)...])),
                let host = normalizedHost(String(entry[..<eq]))
            else {
                throw .authentication(
                    "HAUL_REGISTRY_AUTH: each entry is HOST=USER:PASSWORD, naming the registry the "
                        + "credentials are for (entry \(out.count + 1) is not)")
            }
            out[host] = credentials
        }
        return out
    }

    /// `registry.example.com[:port]` in lower case, or nil if it is not a
    /// bare host.
    static func normalizedHost(_ text: String) -> String? {
        let host = text.trimmingCharacters(in: .whitespaces).lowercased()
        guard !host.isEmpty, host.allSatisfy({ $0.isLetter || $0.isNumber || "-.:[]_".contains($0) }) else {
            return nil
        }
        return host
    }

    /// Credentials for the registry at `host` (`name:port` as in model names).
    public func credentials(for host: String) -> RegistryCredentials? {
        if let bound = explicit[host.lowercased()] { return bound }
        guard let path = dockerConfigPath, FileSystem.exists(path),
            let bytes = try? FileSystem.readFile(path, limit: 1 << 20)
        else { return nil }
        return Self.dockerCredentials(config: bytes, host: host)
    }

    /// docker's `auths` keys are hosts, sometimes written as URLs
    /// (`https://index.docker.io/v1/`); values hold base64 `user:password`
    /// in `auth`, or `username`/`password`.
    static func dockerCredentials(config: [UInt8], host: String) -> RegistryCredentials? {
        struct Config: Decodable {
            struct Entry: Decodable {
                var auth: String?
                var username: String?
                var password: String?
            }
            var auths: [String: Entry]?
        }
        guard let auths = (try? JSONDecoder().decode(Config.self, from: Data(config)))?.auths else { return nil }
        for (key, entry) in auths where Self.hostOf(key) == host.lowercased() {
            if let auth = entry.auth, let data = Data(base64Encoded: auth),
                let credentials = RegistryCredentials(pair: String(decoding: data, as: UTF8.self))
            {
                return credentials
            }
            if let username = entry.username, let password = entry.password {
                return RegistryCredentials(username: username, password: password)
            }
        }
        return nil
    }

    private static func hostOf(_ key: String) -> String {
        var s = Substring(key.lowercased())
        if let sep = s.range(of: "://") { s = s[sep.upperBound...] }
        if let slash = s.firstIndex(of: "/") { s = s[..<slash] }
        return String(s)
    }
}
