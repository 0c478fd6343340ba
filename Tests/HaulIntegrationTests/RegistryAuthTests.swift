import Foundation
import HaulTestSupport
import Testing

@testable import HaulKit

/// Pulls from a genuine OCI registry (Debian's docker-registry) and from
/// the test registry in token-auth mode: anonymous, htpasswd, TLS with a
/// private CA, token flows (credentials, Ollama's signature, expiry), and an
/// HTTP proxy (tinyproxy). Serialized: each starts its own servers.
@Suite(.serialized) struct RegistryAuthTests {
    static let fixture: (dir: TempDir, model: TestModel) = {
        let dir = TempDir("haul-auth-registry")
        let model = try! TestModel.make(
            root: dir.path, name: "library/private:latest", layers: ["24M"],
            texts: ["template={{ .Prompt }}"])
        return (dir, model)
    }()

    func expectPulled(_ name: String, models: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let store = ModelStore(root: models)
        #expect(store.list().map(\.name.displayShortest) == [name + ":latest"], sourceLocation: sourceLocation)
        for layer in Self.fixture.model.layers {
            #expect(
                sameContent(store.blobPath(layer.digest), Self.fixture.dir.path + "/blobs/" + layer.digest.fileName),
                "\(layer.digest.short)", sourceLocation: sourceLocation)
        }
    }

    @Test func anonymousPullFromDockerRegistryOverHTTP() async throws {
        let registry = try await DockerRegistry()
        try registry.push(source: Self.fixture.dir.path, name: "library/private:latest")
        let models = TempDir("haul-models")
        let name = "\(registry.host)/library/private"
        let r = try haul(["pull", name, "--insecure"], models: models.path)
        #expect(r.status == 0, "\(r.stderr)")
        expectPulled(name, models: models.path)
        // Without --insecure it is HTTPS, which this registry does not speak.
        let tls = try haul(["pull", name], models: TempDir("haul-models").path)
        #expect(
            tls.status == 1 && tls.stderr.contains("Error: pull model manifest: Get \"https://\(registry.host)/v2/"),
            "\(tls.stderr)")
    }

    @Test func htpasswdBasicAuthRightWrongAndMissingPassword() async throws {
        let registry = try await DockerRegistry(user: ("alice", "s3cret"))
        try registry.push(source: Self.fixture.dir.path, name: "library/private:latest", user: "alice:s3cret")
        let name = "\(registry.host)/library/private"

        let none = try haul(["pull", name, "--insecure"], models: TempDir("haul-models").path)
        #expect(
            none.status == 1
                && none.stderr.hasSuffix(
                    "Error: pull model manifest: unauthorized: \(RegistryAuthorizer.credentialsHint)\n"),
            "\(none.stderr)")

        let wrong = try run(
            haulBinary, ["pull", name, "--insecure"],
            environment: [
                "OLLAMA_MODELS": TempDir("haul-models").path, "HAUL_REGISTRY_AUTH": "\(registry.host)=alice:nope"
            ])
        #expect(
            wrong.status == 1
                && wrong.stderr.hasSuffix("Error: pull model manifest: unauthorized: access denied for user alice\n"),
            "\(wrong.stderr)")
        #expect(!wrong.stderr.contains("nope"), "a password must never be printed")

        // --password-stdin.
        let models = TempDir("haul-models")
        let right = try run(
            "/bin/sh",
            ["-c", "printf 's3cret\\n' | '\(haulBinary)' pull \(name) --insecure --username alice --password-stdin"],
            environment: ["OLLAMA_MODELS": models.path])
        #expect(right.status == 0, "\(right.stderr)")
        expectPulled(name, models: models.path)
        // A password file with Windows line endings: "\r\n" is trimmed too.
        let crlf = TempDir("haul-models")
        let windows = try run(
            "/bin/sh",
            ["-c", "printf 's3cret\\r\\n' | '\(haulBinary)' pull \(name) --insecure --username alice --password-stdin"],
            environment: ["OLLAMA_MODELS": crlf.path])
        #expect(windows.status == 0, "\(windows.stderr)")
        expectPulled(name, models: crlf.path)

        // ~/.docker/config.json, as docker login writes it.
        let home = TempDir("haul-home")
        try FileManager.default.createDirectory(atPath: home.sub(".docker"), withIntermediateDirectories: true)
        try #"{"auths":{"\#(registry.host)":{"auth":"\#(Data("alice:s3cret".utf8).base64EncodedString())"}}}"#
            .write(toFile: home.sub(".docker/config.json"), atomically: true, encoding: .utf8)
        let viaDocker = try run(
            haulBinary, ["pull", name, "--insecure"],
            environment: ["OLLAMA_MODELS": TempDir("haul-models").path, "HOME": home.path])
        #expect(viaDocker.status == 0, "\(viaDocker.stderr)")
    }

    @Test func tlsWithAPrivateCAFailsUntilTheCAIsGiven() async throws {
        let pki = try TestPKI()
        let registry = try await DockerRegistry(tls: pki)
        try registry.push(source: Self.fixture.dir.path, name: "library/private:latest", ca: pki.caCert)
        let name = "\(registry.host)/library/private"

        let untrusted = try haul(["pull", name], models: TempDir("haul-models").path)
        #expect(untrusted.status == 1, "\(untrusted.stderr)")
        #expect(
            untrusted.stderr.contains("certificate"),
            "the error should say the certificate is the problem: \(untrusted.stderr)")

        let models = TempDir("haul-models")
        let withCA = try haul(["pull", name, "--ca-file", pki.caCert], models: models.path)
        #expect(withCA.status == 0, "\(withCA.stderr)")
        expectPulled(name, models: models.path)

        let viaEnv = try run(
            haulBinary, ["pull", name],
            environment: ["OLLAMA_MODELS": TempDir("haul-models").path, "SSL_CERT_FILE": pki.caCert])
        #expect(viaEnv.status == 0, "\(viaEnv.stderr)")

        let skipped = try haul(["pull", name, "--insecure-skip-tls-verify"], models: TempDir("haul-models").path)
        #expect(
            skipped.status == 0 && skipped.stderr.contains("warning: TLS certificate verification is off"),
            "\(skipped.stderr)")
    }

    @Test func tokenFlowWithCredentialsNeverSendsTheTokenToTheCDN() async throws {
        let registry = try TestRegistry(root: Self.fixture.dir.path, cdn: true, tokenAuth: "bob:pw")
        let name = "\(registry.host)/library/private"
        let models = TempDir("haul-models")
        let r = try run(
            haulBinary, ["pull", name, "--insecure"],
            environment: ["OLLAMA_MODELS": models.path, "HAUL_REGISTRY_AUTH": "\(registry.host)=bob:pw"])
        #expect(r.status == 0, "\(r.stderr)")
        expectPulled(name, models: models.path)
        // One token for the whole pull; the CDN never saw an Authorization header.
        #expect(try await registry.counter("token_requests") == 1)
        #expect(try await registry.counter("cdn_authorization") == 0)
        #expect(try await registry.counter("redirects") > 0)

        let wrong = try run(
            haulBinary, ["pull", name, "--insecure"],
            environment: [
                "OLLAMA_MODELS": TempDir("haul-models").path, "HAUL_REGISTRY_AUTH": "\(registry.host)=bob:bad"
            ])
        #expect(
            wrong.status == 1 && wrong.stderr.contains("unauthorized: the token server refused: 401: bad credentials"),
            "\(wrong.stderr)")
    }

    @Test func aTokenThatExpiresMidPullIsRenewedAndTheBlobResumes() async throws {
        // Tokens live 1 s; at 4 MB/s per connection each 4 MiB piece (the
        // smallest Haul cuts) takes a second, so the later pieces of the
        // 24 MiB layer are asked for after the first token expired. Its
        // ranges go to the registry itself (no CDN).
        let registry = try TestRegistry(
            root: Self.fixture.dir.path, cdn: false, rate: "4M", tokenAuth: "anonymous", tokenTTL: 1)
        let name = "\(registry.host)/library/private"
        let models = TempDir("haul-models")
        let r = try run(
            haulBinary, ["pull", name, "--insecure", "--connections", "2"],
            environment: ["OLLAMA_MODELS": models.path, "HOME": TempDir("haul-home").path])
        #expect(r.status == 0, "\(r.stderr)")
        expectPulled(name, models: models.path)
        #expect(try await registry.counter("token_requests") >= 2)
    }

    @Test func ollamasSignedTokenFlow() async throws {
        let registry = try TestRegistry(root: Self.fixture.dir.path, cdn: true, tokenAuth: "ollama")
        let name = "\(registry.host)/library/private"
        let home = TempDir("haul-home")
        try FileManager.default.createDirectory(atPath: home.sub(".ollama"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: ollamaTestKeyPath, toPath: home.sub(".ollama/id_ed25519"))
        let models = TempDir("haul-models")
        let r = try run(
            haulBinary, ["pull", name, "--insecure"], environment: ["OLLAMA_MODELS": models.path, "HOME": home.path])
        #expect(r.status == 0, "\(r.stderr)")
        expectPulled(name, models: models.path)
        #expect(try await registry.counter("token_requests") == 1)
        #expect(try await registry.counter("cdn_authorization") == 0)
        // Without the key, the anonymous request is refused by this server.
        let anonymous = try run(
            haulBinary, ["pull", name, "--insecure"],
            environment: ["OLLAMA_MODELS": TempDir("haul-models").path, "HOME": TempDir("haul-home").path])
        #expect(anonymous.status == 1 && anonymous.stderr.contains("the token server refused"), "\(anonymous.stderr)")
    }

    @Test func httpProxyFromTheEnvironmentAndNoProxy() async throws {
        let proxy = try await Tinyproxy()
        let registry = try TestRegistry(root: Self.fixture.dir.path, cdn: true)
        let name = "\(registry.host)/library/private"
        let models = TempDir("haul-models")
        // Upper-case HTTP_PROXY, which curl alone would ignore.
        let viaProxy = try run(
            haulBinary, ["pull", name, "--insecure"],
            environment: ["OLLAMA_MODELS": models.path, "HTTP_PROXY": proxy.url])
        #expect(viaProxy.status == 0, "\(viaProxy.stderr)")
        expectPulled(name, models: models.path)
        let proxied = try await registry.counter("via_proxy")
        #expect(proxied > 0, "tinyproxy adds Via; the registry saw none")

        let direct = try run(
            haulBinary, ["pull", name, "--insecure"],
            environment: [
                "OLLAMA_MODELS": TempDir("haul-models").path, "HTTP_PROXY": proxy.url, "NO_PROXY": "127.0.0.1"
            ])
        #expect(direct.status == 0, "\(direct.stderr)")
        #expect(try await registry.counter("via_proxy") == proxied, "NO_PROXY=127.0.0.1 must bypass the proxy")
    }

    @Test func httpsThroughAProxyTunnel() async throws {
        let proxy = try await Tinyproxy()
        let pki = try TestPKI()
        let registry = try await DockerRegistry(tls: pki)
        try registry.push(source: Self.fixture.dir.path, name: "library/private:latest", ca: pki.caCert)
        let name = "\(registry.host)/library/private"
        let models = TempDir("haul-models")
        let r = try run(
            haulBinary, ["pull", name, "--ca-file", pki.caCert],
            environment: ["OLLAMA_MODELS": models.path, "https_proxy": proxy.url])
        #expect(r.status == 0, "\(r.stderr)")
        expectPulled(name, models: models.path)
        #expect(
            proxy.log.contains("CONNECT \(registry.host)"), "no CONNECT in tinyproxy's log: \(proxy.log.suffix(500))")
    }

    /// Credentials belong to one registry host. A registry the user did not
    /// bind them to (say, one a daemon client named) asks with the same
    /// challenge and gets nothing.
    @Test func credentialsAreOfferedOnlyToTheirRegistry() async throws {
        let trusted = try TestRegistry(root: Self.fixture.dir.path, cdn: false, tokenAuth: "bob:pw")
        let other = try TestRegistry(root: Self.fixture.dir.path, cdn: false, tokenAuth: "bob:pw")
        let env = ["HAUL_REGISTRY_AUTH": "\(trusted.host)=bob:pw"]
        let models = TempDir("haul-models")
        let good = try run(
            haulBinary, ["pull", "--insecure", "\(trusted.host)/library/private"],
            environment: env.merging(["OLLAMA_MODELS": models.path]) { $1 })
        #expect(good.status == 0, "\(good.stderr)")
        let bad = try run(
            haulBinary, ["pull", "--insecure", "\(other.host)/library/private"],
            environment: env.merging(["OLLAMA_MODELS": TempDir("haul-models").path]) { $1 })
        #expect(bad.status == 1 && bad.stderr.contains("unauthorized"), "\(bad.stderr)")
        let basic = "Basic " + Data("bob:pw".utf8).base64EncodedString()
        #expect(!(try await other.list("authorizations_seen")).contains(basic), "credentials went to another registry")
        #expect(try await trusted.list("authorizations_seen").contains(basic))

        // The old unbound form is refused with a clear word, not guessed at.
        let unbound = try run(
            haulBinary, ["pull", "--insecure", "\(trusted.host)/library/private"],
            environment: ["OLLAMA_MODELS": TempDir("haul-models").path, "HAUL_REGISTRY_AUTH": "bob:pw"])
        #expect(
            unbound.status == 1 && unbound.stderr.contains("HAUL_REGISTRY_AUTH: each entry is HOST=USER:PASSWORD"),
            "\(unbound.stderr)")
        #expect(
            try CredentialSource.parse(registryAuth: "a.example=u:p, b.example:5000=v:q:r\nC.example=w:x") == [
                "a.example": RegistryCredentials(username: "u", password: "p"),
                "b.example:5000": RegistryCredentials(username: "v", password: "q:r"),
                "c.example": RegistryCredentials(username: "w", password: "x")
            ])
    }

    /// A registry whose 401 names another registry's realm, service and
    /// scope must not receive the token cached for that other registry.
    @Test func aCachedTokenNeverGoesToAnotherRegistry() async throws {
        let owner = try TestRegistry(root: Self.fixture.dir.path, cdn: false, tokenAuth: "bob:pw")
        let thief = try TestRegistry(
            root: Self.fixture.dir.path, cdn: false, tokenAuth: "anonymous",
            realm: "http://127.0.0.1:\(owner.registryPort)/token")
        let auth = RegistryAuth(
            credentials: CredentialSource(explicit: [owner.host: RegistryCredentials(username: "bob", password: "pw")]),
            ollamaKeyPath: nil)
        let models = TempDir("haul-models")
        let haul = Haul(store: ModelStore(root: models.path), prune: false, auth: auth)
        let (_, ownerError) = await collect(haul.pull("\(owner.host)/library/private", insecure: true))
        #expect(ownerError == nil, "\(String(describing: ownerError))")
        let issued = try await owner.list("issued_tokens")
        #expect(issued.count == 1)
        let (_, thiefError) = await collect(haul.pull("\(thief.host)/library/private", insecure: true))
        #expect(thiefError != nil)
        let seen = try await thief.list("authorizations_seen")
        #expect(
            !issued.contains { token in seen.contains("Bearer " + token) },
            "the owner's token reached another registry: \(seen)")
        await haul.shutdown()
    }

    /// A registry that redirects blob requests to another path of itself
    /// still gets its Authorization there (it is the same origin).
    @Test func aRedirectWithinTheRegistrysOriginKeepsItsAuthorization() async throws {
        let registry = try TestRegistry(
            root: Self.fixture.dir.path, cdn: false, tokenAuth: "bob:pw", selfRedirect: true)
        let name = "\(registry.host)/library/private"
        let models = TempDir("haul-models")
        let r = try run(
            haulBinary, ["pull", name, "--insecure"],
            environment: ["OLLAMA_MODELS": models.path, "HAUL_REGISTRY_AUTH": "\(registry.host)=bob:pw"])
        #expect(r.status == 0, "\(r.stderr)")
        expectPulled(name, models: models.path)
    }

    /// libcurl refusing an option (as an old one refuses
    /// CURLOPT_REDIR_PROTOCOLS_STR) fails the request with the option's
    /// name, instead of running without the limit it carries.
    @Test func anOptionLibcurlRefusesFailsLoudly() async throws {
        var config = EngineConfiguration()
        config.connectTimeout = .seconds(-1)
        let haul = Haul(store: ModelStore(root: TempDir("haul-models").path), configuration: config, prune: false)
        let (_, error) = await collect(haul.pull("127.0.0.1:9/library/x", insecure: true))
        #expect(
            "\(String(describing: error))".contains("refused CURLOPT_CONNECTTIMEOUT"), "\(String(describing: error))")
        await haul.shutdown()
    }
}
