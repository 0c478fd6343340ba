import Foundation
import HaulTestSupport
import Synchronization
import Testing

@testable import HaulKit

/// The pieces of registry authentication that need no server.
struct AuthTests {
    @Test func challengesParseByRFC7235() throws {
        let docker = AuthChallenge.parse(
            #"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/ubuntu:pull""#
        )
        #expect(
            docker == [
                AuthChallenge(
                    scheme: "bearer",
                    parameters: [
                        "realm": "https://auth.docker.io/token", "service": "registry.docker.io",
                        "scope": "repository:library/ubuntu:pull"
                    ], token68: nil)
            ])

        // Several challenges, case-insensitive names, unquoted values,
        // spaces around "=", commas and escaped quotes inside quotes.
        let many = AuthChallenge.parse(
            #"Basic realm="a, \"b\"" , BEARER Realm = https://x/token, Service=reg,scope="repository:a/b:pull,push""#)
        try #require(many.count == 2)
        #expect(many[0].scheme == "basic" && many[0]["realm"] == #"a, "b""#)
        #expect(many[1].scheme == "bearer" && many[1]["realm"] == "https://x/token" && many[1]["service"] == "reg")
        #expect(many[1]["scope"] == "repository:a/b:pull,push")

        let token68 = AuthChallenge.parse("Negotiate abc123==, Basic realm=\"r\"")
        #expect(token68.map(\.scheme) == ["negotiate", "basic"] && token68.first?.token68 == "abc123==")
        #expect(AuthChallenge.parse("Basic").first?.scheme == "basic")
        #expect(AuthChallenge.parse("Basic, Bearer realm=\"r\"").map(\.scheme) == ["basic", "bearer"])
        #expect(AuthChallenge.parse("").isEmpty && AuthChallenge.parse(" , ,").isEmpty)
        // An unterminated quote ends the list instead of inventing schemes.
        let broken = AuthChallenge.parse(#"Bearer realm="https://x/token, service=evil"#)
        #expect(broken.count == 1 && broken.first?["realm"] == nil)
        // The first occurrence of a repeated parameter wins.
        #expect(AuthChallenge.parse(#"Bearer realm="one", realm="two""#).first?["realm"] == "one")
    }

    @Test func ollamaSignsTokenRequestsAsOllamaDoes() throws {
        let key = try #require(try OllamaKey.load(path: ollamaTestKeyPath))
        // The public key as id_ed25519.pub's second field.
        let pub = try String(contentsOfFile: ollamaTestKeyPath + ".pub", encoding: .utf8).split(separator: " ")[1]
        #expect(key.publicKeyBase64 == String(pub))

        // Go's url.Values.Encode order and escaping, the nonce as base64url.
        let url = RegistryAuthorizer.ollamaTokenURL(
            realm: "https://registry.ollama.ai/v2/token", service: "ollama.com",
            scope: "repository:library/qwen:pull",
            now: Date(timeIntervalSince1970: 1_700_000_000), nonce: Array(0..<16))
        #expect(
            url == "https://registry.ollama.ai/v2/token?nonce=AAECAwQFBgcICQoLDA0ODw"
                + "&scope=repository%3Alibrary%2Fqwen%3Apull&service=ollama.com&ts=1700000000")
        // Signature computed independently (Python `cryptography`) over
        // "GET,<url>,<base64 of the empty body's hex SHA-256>".
        let expected = "mfeuTcQoebmiNw5JoAHBhYD87Hki1PmoWPcVgO9afRJdh+Hxhgu3Gh8lRUMecPGQnlGScrpbHS40wYBrwi44DA=="
        #expect(try key.authorization(forTokenURL: url) == "\(pub):\(expected)")
    }

    @Test func unusableKeysAreNamedErrors() throws {
        let dir = TempDir()
        try "not a key".write(toFile: dir.sub("k"), atomically: true, encoding: .utf8)
        #expect(throws: HaulError.authentication("\(dir.sub("k")): not an OpenSSH private key")) {
            try OllamaKey.load(path: dir.sub("k"))
        }
        #expect(try OllamaKey.load(path: dir.sub("missing")) == nil)
        let r = try run("/usr/bin/ssh-keygen", ["-q", "-t", "ed25519", "-N", "secret", "-f", dir.sub("enc")])
        #expect(r.status == 0)
        #expect(
            throws: HaulError.authentication("\(dir.sub("enc")): the key is encrypted; Ollama's key has no passphrase")
        ) {
            try OllamaKey.load(path: dir.sub("enc"))
        }
    }

    @Test func dockerConfigCredentialsMatchByHost() {
        let config = Array(
            """
            {"auths": {"https://index.docker.io/v1/": {"auth": "\(Data("hub:pw".utf8).base64EncodedString())"},
                       "127.0.0.1:5000": {"username": "me", "password": "p:w"},
                       "bad.example": {"auth": "!!!"}}}
            """.utf8)
        #expect(
            CredentialSource.dockerCredentials(config: config, host: "index.docker.io")
                == RegistryCredentials(username: "hub", password: "pw"))
        #expect(
            CredentialSource.dockerCredentials(config: config, host: "127.0.0.1:5000")
                == RegistryCredentials(username: "me", password: "p:w"))
        #expect(CredentialSource.dockerCredentials(config: config, host: "127.0.0.1:5001") == nil)
        #expect(CredentialSource.dockerCredentials(config: config, host: "bad.example") == nil)
        #expect(RegistryCredentials(pair: "u:a:b") == RegistryCredentials(username: "u", password: "a:b"))
        #expect(RegistryCredentials(pair: ":x") == nil)
        #expect(RegistryCredentials(username: "u", password: "p").basicAuthorization == "Basic dTpw")
    }

    @Test func tokensAreSharedRefreshedOnceAndExpire() async throws {
        let cache = TokenCache()
        let key = TokenCache.Key(
            registry: "https://a:443", identity: "anonymous", realm: "https://r/token", service: "s",
            scope: "repository:a/b:pull")
        let fetches = Counter()
        let fetch: @Sendable () async throws -> TokenCache.Token = {
            let n = fetches.increment()
            try await Task.sleep(for: .milliseconds(50))
            return TokenCache.Token(value: "t\(n)", expires: Date().timeIntervalSince1970 + 60)
        }
        // Ten pulls needing the token at once: one request.
        let tokens = try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<10 { group.addTask { try await cache.token(for: key, fetch: fetch) } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(Set(tokens) == ["t1"] && fetches.value == 1)
        #expect(try await cache.token(for: key, fetch: fetch) == "t1")
        // A refused token is replaced; an expired one too.
        #expect(try await cache.token(for: key, rejected: "t1", fetch: fetch) == "t2")
        #expect(try await cache.token(for: key, now: Date().timeIntervalSince1970 + 120, fetch: fetch) == "t3")
    }

    @Test func proxiesFollowGoRules() {
        let env = [
            "HTTP_PROXY": "http://upper:1", "http_proxy": "http://lower:2", "https_proxy": "http://s:3",
            "no_proxy": "localhost,.internal"
        ]
        let p = ProxySettings.fromEnvironment(env)
        #expect(p.proxy(for: "http://registry/v2/") == "http://upper:1")
        #expect(p.proxy(for: "HTTPS://registry/v2/") == "http://s:3")
        #expect(p.noProxy == "localhost,.internal")
        #expect(ProxySettings.fromEnvironment([:]).proxy(for: "https://x") == nil)
    }
}

final class Counter: Sendable {
    private let count = Mutex<Int>(0)
    func increment() -> Int {
        count.withLock {
            $0 += 1
            return $0
        }
    }
    var value: Int { count.withLock { $0 } }
}

/// What a daemon's push would send of the operator's, under every spelling
/// of the registry's host (the attacker's pass found `ollama.com:443` and
/// the HF token unguarded).
@Suite struct HeldCredentialsTests {
    @Test func everySpellingOfARegistryTheOperatorHoldsCredentialsForIsCounted() throws {
        let dir = TempDir("haul-held")
        let key = dir.sub("id_ed25519")
        try Data("key".utf8).write(to: URL(fileURLWithPath: key))
        let auth = RegistryAuth(
            credentials: CredentialSource(explicit: ["registry.corp:5000": .init(username: "u", password: "p")]),
            ollamaKeyPath: key,
            huggingFace: HuggingFace(token: "hf_secret", endpoint: "http://127.0.0.1:35111"))
        for held in [
            "registry.corp:5000/a/b", "ollama.com/a/b", "ollama.com:443/a/b", "registry.ollama.ai:443/a/b",
            "REGISTRY.OLLAMA.AI/a/b", "hf.co/a/b", "huggingface.co:443/a/b", "127.0.0.1:35111/a/b"
        ] {
            #expect(auth.holdsCredentials(for: try ModelName(parsing: held)), "\(held)")
        }
        #expect(!auth.holdsCredentials(for: try ModelName(parsing: "127.0.0.1:5000/a/b")))
        #expect(!RegistryAuth().holdsCredentials(for: try ModelName(parsing: "ollama.com:443/a/b")))
    }
}
