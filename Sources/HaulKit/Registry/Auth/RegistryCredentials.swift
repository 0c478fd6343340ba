import Foundation

/// A username and password for one registry.
public struct RegistryCredentials: Sendable, Equatable {
    public let username: String
    public let password: String

    public init(username: String, password: String) {
        self.username = username
        self.password = password
    }

    /// `user:password`, as `HAUL_REGISTRY_AUTH` and docker's `auth` hold it.
    init?(pair: String) {
        guard let colon = pair.firstIndex(of: ":"), colon != pair.startIndex else { return nil }
        self.init(username: String(pair[..<colon]), password: String(pair[pair.index(after: colon)...]))
    }

    var basicAuthorization: String {
        "Basic " + Data("\(username):\(password)".utf8).base64EncodedString()
    }
}

/// Where registry credentials come from, most specific first:
/// `--username/--password-stdin` (for the registry being pulled from),
/// `HAUL_REGISTRY_AUTH=user:password` (likewise), then the `auths` of
/// `~/.docker/config.json` by registry host (what `docker login` writes).
/// Credentials are only ever offered to the registry they belong to and its
/// token realm; never to a CDN.
public struct CredentialSource: Sendable {
    public var explicit: RegistryCredentials?
    public var dockerConfigPath: String?

    public init(explicit: RegistryCredentials? = nil, dockerConfigPath: String? = nil) {
        self.explicit = explicit
        self.dockerConfigPath = dockerConfigPath
    }

    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> CredentialSource {
        let pair = environment["HAUL_REGISTRY_AUTH"].flatMap(RegistryCredentials.init(pair:))
        let dockerDir = environment["DOCKER_CONFIG"] ?? ((environment["HOME"] ?? NSHomeDirectory()) + "/.docker")
        return CredentialSource(explicit: pair, dockerConfigPath: dockerDir + "/config.json")
    }

    /// Credentials for the registry at `host` (`name:port` as in model names).
    public func credentials(for host: String) -> RegistryCredentials? {
        if let explicit { return explicit }
        guard let path = dockerConfigPath, FileSystem.exists(path),
              let bytes = try? FileSystem.readFile(path, limit: 1 << 20) else { return nil }
        return Self.dockerCredentials(config: bytes, host: host)
    }

    /// docker's `auths` keys are hosts, sometimes written as URLs
    /// (`https://index.docker.io/v1/`); values hold base64 `user:password`
    /// in `auth`, or `username`/`password`.
    static func dockerCredentials(config: [UInt8], host: String) -> RegistryCredentials? {
        struct Config: Decodable {
            struct Entry: Decodable { var auth: String?; var username: String?; var password: String? }
            var auths: [String: Entry]?
        }
        guard let auths = (try? JSONDecoder().decode(Config.self, from: Data(config)))?.auths else { return nil }
        for (key, entry) in auths where Self.hostOf(key) == host.lowercased() {
            if let auth = entry.auth, let data = Data(base64Encoded: auth),
               let credentials = RegistryCredentials(pair: String(decoding: data, as: UTF8.self)) {
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
