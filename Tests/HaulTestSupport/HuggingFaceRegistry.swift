import Foundation

/// Hugging Face's registry, redirect chain and token realm as Ollama meets
/// them (Tests/registry/hfregistry.py), served under HF's real host names
/// over TLS on port 443 inside a network namespace of the test's own. Haul
/// runs inside it too, trusting the test CA.
package final class HuggingFaceRegistry: Sendable {
    package static let hostNames = [
        "hf.co", "huggingface.co", "cas-bridge.xethub.hf.co", "hf-mirror.test", "registry.evil.test"
    ]
    package let namespace: NetworkNamespace
    package let pki: TestPKI
    private let server: ServerProcess
    /// An empty HOME for Haul: no Ollama key, no HF token file, unless a
    /// test puts one there.
    package let home = TempDir("haul-hf-home")

    /// `privateRepos` (USER/REPO) need `hfToken` as a Bearer token, or a
    /// signature by the Ollama key whose `.pub` is `ollamaPublicKey`.
    package init(root: String, privateRepos: [String] = [], hfToken: String? = nil, ollamaPublicKey: String? = nil)
        throws
    {
        namespace = try NetworkNamespace(hostNames: Self.hostNames)
        pki = try TestPKI(dnsNames: Self.hostNames)
        var args = [
            testsDirectory.appendingPathComponent("registry/hfregistry.py").path, "serve", "--root", root,
            "--cert", pki.serverCert, "--key", pki.serverKey
        ]
        args += privateRepos.flatMap { ["--private", $0] }
        if let hfToken { args += ["--hf-token", hfToken] }
        if let ollamaPublicKey { args += ["--ollama-pub", ollamaPublicKey] }
        let inside = namespace.command("/usr/bin/python3", args)
        server = try ServerProcess(executable: inside.executable, arguments: inside.arguments)
    }

    /// `haul ARGS` inside the namespace. HF's variables are cleared unless
    /// `environment` sets them.
    package func haul(_ arguments: [String], models: String, environment: [String: String] = [:]) throws -> RunResult {
        let base = [
            "OLLAMA_MODELS": models, "SSL_CERT_FILE": pki.caCert, "HOME": home.path,
            "HF_TOKEN": "", "HF_ENDPOINT": "", "HF_HOME": "", "HF_TOKEN_PATH": "", "XDG_CACHE_HOME": ""
        ]
        return try namespace.run(haulBinary, arguments, environment: base.merging(environment) { _, new in new })
    }

    package func stats() throws -> [String: Any] {
        let r = try namespace.run("/usr/bin/curl", ["-sS", "--cacert", pki.caCert, "https://hf.co/_stats"])
        guard r.status == 0, let stats = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        else {
            throw TestFailure("hfregistry stats: \(r.stderr)")
        }
        return stats
    }

    /// Requests each host received.
    package func requests() throws -> [String: Int] { (try stats()["hosts"] as? [String: Int]) ?? [:] }

    /// The distinct `Authorization` values each host received.
    package func authorizations() throws -> [String: [String]] {
        (try stats()["authorization_by_host"] as? [String: [String]]) ?? [:]
    }
}
