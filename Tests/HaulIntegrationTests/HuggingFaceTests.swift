import Foundation
import HaulKit
import HaulTestSupport
import Testing

/// `hf.co/USER/REPO:QUANT` against Hugging Face's registry shape under its
/// real host names (a network namespace with its own /etc/hosts, TLS on
/// 443): the 307 to a signed URL on huggingface.co, its 302 to the Xet CDN,
/// the realm on huggingface.co, HF_TOKEN, the Ollama key, HF_ENDPOINT.
@Suite(.serialized) struct HuggingFaceTests {
    static let publicName = "hf.co/bartowski/Tiny-GGUF:Q4_K_M"
    static let privateName = "hf.co/alice/Secret-GGUF:Q8_0"
    static let token = "hf_haulTestToken0123456789"

    static let fixture: (dir: TempDir, tiny: TestModel, secret: TestModel) = {
        let dir = TempDir("haul-hf-registry")
        let tiny = try! TestModel.make(
            root: dir.path, name: "bartowski/Tiny-GGUF:Q4_K_M", layers: ["3M"],
            texts: ["template={{ .Prompt }}"])
        let secret = try! TestModel.make(root: dir.path, name: "alice/Secret-GGUF:Q8_0", layers: ["1M"])
        return (dir, tiny, secret)
    }()

    func registry() throws -> HuggingFaceRegistry {
        try HuggingFaceRegistry(
            root: Self.fixture.dir.path, privateRepos: ["alice/Secret-GGUF"], hfToken: Self.token,
            ollamaPublicKey: ollamaTestKeyPath + ".pub")
    }

    func expectStored(
        _ name: String, _ model: TestModel, models: String, sourceLocation: SourceLocation = #_sourceLocation
    ) {
        let store = ModelStore(root: models)
        #expect(store.list().map(\.name.displayShortest) == [name], sourceLocation: sourceLocation)
        for layer in model.layers {
            #expect(
                sameContent(store.blobPath(layer.digest), Self.fixture.dir.path + "/blobs/" + layer.digest.fileName),
                "\(layer.digest.short)", sourceLocation: sourceLocation)
        }
    }

    @Test func aPublicModelThroughHFsRedirectChain() throws {
        let hf = try registry()
        let models = TempDir("haul-models")
        let r = try hf.haul(["pull", Self.publicName], models: models.path)
        #expect(r.status == 0, "\(r.stderr)")
        expectStored(Self.publicName, Self.fixture.tiny, models: models.path)
        #expect(FileManager.default.fileExists(atPath: models.sub("manifests/hf.co/bartowski/Tiny-GGUF/Q4_K_M")))

        let requests = try hf.requests()
        #expect(requests["cas-bridge.xethub.hf.co", default: 0] > 0, "the bytes come from the CDN: \(requests)")
        let authorizations = try hf.authorizations()
        #expect(authorizations["cas-bridge.xethub.hf.co"] == nil, "the CDN got the registry's token")
        #expect(authorizations["huggingface.co"] == nil, "anonymous token request, unsigned URLs: \(authorizations)")
        #expect(authorizations["hf.co", default: []].allSatisfy { $0.hasPrefix("Bearer ") })
    }

    /// HF's realm is on huggingface.co while the registry is hf.co; Ollama's
    /// host pinning refuses to sign for it (ollama issue #15661). A user
    /// who gave HF their Ollama key gets their private model.
    @Test func theOllamaKeySignsForHuggingFaceCoAsHFCosOwnRealm() throws {
        let hf = try registry()
        let unsigned = try hf.haul(["pull", Self.privateName], models: TempDir("haul-models").path)
        #expect(
            unsigned.status == 1 && unsigned.stderr.contains("unauthorized: the token server refused: 401"),
            "\(unsigned.stderr)")

        try FileManager.default.createDirectory(atPath: hf.home.sub(".ollama"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: ollamaTestKeyPath, toPath: hf.home.sub(".ollama/id_ed25519"))
        let models = TempDir("haul-models")
        let signed = try hf.haul(["pull", Self.privateName], models: models.path)
        #expect(signed.status == 0, "\(signed.stderr)")
        expectStored(Self.privateName, Self.fixture.secret, models: models.path)
        let publicKey = try String(contentsOfFile: ollamaTestKeyPath + ".pub", encoding: .utf8).split(separator: " ")[1]
        #expect(try hf.authorizations()["huggingface.co", default: []].contains { $0.hasPrefix(publicKey + ":") })
    }

    /// HF_TOKEN goes to HF's realm and nowhere else: not to the registry,
    /// not to the CDN, and not to a registry whose challenge names HF's
    /// realm to collect a token minted with it.
    @Test func hfTokenGoesToHuggingFacesRealmOnly() throws {
        let hf = try registry()
        try FileManager.default.createDirectory(atPath: hf.home.sub(".ollama"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: ollamaTestKeyPath, toPath: hf.home.sub(".ollama/id_ed25519"))
        let bearer = "Bearer " + Self.token

        let hostile = try hf.haul(
            ["pull", "registry.evil.test/alice/Secret-GGUF:Q8_0"], models: TempDir("haul-models").path,
            environment: ["HF_TOKEN": Self.token])
        // Here HF's realm is on loopback (the namespace's hosts file), so
        // the foreign registry's realm is refused by address before any
        // request; on the internet it is public, and the token flow refuses.
        #expect(
            hostile.status == 1
                && (hostile.stderr.contains("unauthorized") || hostile.stderr.contains("loopback address: refused")),
            "\(hostile.stderr)")
        var seen = try hf.authorizations()
        #expect(
            seen["huggingface.co"] == nil,
            "a registry outside HF got HF_TOKEN or the Ollama key sent to HF's realm: \(seen)")
        #expect(seen["registry.evil.test"] == nil, "it was given a token: \(seen)")

        let models = TempDir("haul-models")
        let r = try hf.haul(["pull", Self.privateName], models: models.path, environment: ["HF_TOKEN": Self.token])
        #expect(r.status == 0, "\(r.stderr)")
        expectStored(Self.privateName, Self.fixture.secret, models: models.path)
        seen = try hf.authorizations()
        #expect(seen["huggingface.co"] == [bearer], "\(seen)")
        for host in HuggingFaceRegistry.hostNames where host != "huggingface.co" {
            #expect(!seen[host, default: []].contains(bearer), "HF_TOKEN went to \(host)")
        }

        // The file `hf auth login` writes, when HF_TOKEN is unset.
        let cache = hf.home.sub(".cache/huggingface")
        try FileManager.default.createDirectory(atPath: cache, withIntermediateDirectories: true)
        try "\(Self.token)\n".write(toFile: cache + "/token", atomically: true, encoding: .utf8)
        try FileManager.default.removeItem(atPath: hf.home.sub(".ollama"))
        let fromFile = try hf.haul(["pull", Self.privateName], models: TempDir("haul-models").path)
        #expect(fromFile.status == 0, "\(fromFile.stderr)")

        let wrong = try hf.haul(
            ["pull", Self.publicName], models: TempDir("haul-models").path, environment: ["HF_TOKEN": "hf_wrong"])
        #expect(wrong.status == 1 && wrong.stderr.contains("Hugging Face refused HF_TOKEN"), "\(wrong.stderr)")
        #expect(!wrong.stderr.contains("hf_wrong"), "a token must never be printed")
    }

    @Test func hfEndpointIsAMirrorForHFsNames() throws {
        let hf = try registry()
        let models = TempDir("haul-models")
        let r = try hf.haul(
            ["pull", Self.privateName], models: models.path,
            environment: ["HF_ENDPOINT": "https://hf-mirror.test/", "HF_TOKEN": Self.token])
        #expect(r.status == 0, "\(r.stderr)")
        expectStored(Self.privateName, Self.fixture.secret, models: models.path)
        let requests = try hf.requests()
        #expect(
            requests["hf-mirror.test", default: 0] > 0 && requests["hf.co"] == nil && requests["huggingface.co"] == nil,
            "everything from the mirror: \(requests)")
        #expect(
            try hf.authorizations()["hf-mirror.test", default: []].contains("Bearer " + Self.token),
            "the mirror HF_ENDPOINT names is Hugging Face to the user")

        let bad = try hf.haul(
            ["pull", Self.publicName], models: models.path, environment: ["HF_ENDPOINT": "ftp://mirror"])
        #expect(
            bad.status == 1
                && bad.stderr
                    == "Error: HF_ENDPOINT: \"ftp://mirror\" is not an http(s) URL (e.g. https://hf-mirror.example)\n",
            "\(bad.stderr)")
        #expect(ModelStore(root: models.path).list().count == 1)
    }
}
