import Foundation
import Testing

@testable import HaulKit

/// An embedder's `Haul()` behaves the same whatever the process's
/// environment holds; `fromEnvironment` reads what the CLI reads.
/// (`make test` runs one test at a time, so the variables set here reach
/// no other test.)
@Suite(.serialized) struct DefaultsTests {
    static let variables = [
        "OLLAMA_MODELS": "/srv/elsewhere", "OLLAMA_NOPRUNE": "1", "HAUL_DIRECT_IO": "1", "HAUL_DEBUG": "",
        "HAUL_HOSTS_DIR": "/etc/elsewhere", "HAUL_REGISTRY_AUTH": "registry.example=ci:secret",
        "HF_TOKEN": "hf_test", "HF_ENDPOINT": "https://hf-mirror.example", "HOME": "/home/elsewhere"
    ]

    @Test func defaultsReadNoEnvironmentVariable() {
        let saved = Self.variables.keys.map { ($0, getenv($0).map { String(cString: $0) }) }
        for (key, value) in Self.variables { setenv(key, value, 1) }
        defer {
            for (key, value) in saved {
                if let value { setenv(key, value, 1) } else { unsetenv(key) }
            }
        }
        let configuration = EngineConfiguration()
        #expect(!configuration.directIO && configuration.caFile == nil && configuration.proxies == ProxySettings())
        let auth = RegistryAuth()
        #expect(auth.credentials.explicit.isEmpty && auth.credentials.dockerConfigPath == nil)
        #expect(auth.ollamaKeyPath == nil && auth.huggingFace == HuggingFace())
        let haul = Haul()
        #expect(haul.store.root == FileSystem.userHomeDirectory() + "/.ollama/models")
        #expect(haul.store.root != "/srv/elsewhere" && !haul.store.root.hasPrefix("/home/elsewhere"))
        #expect(haul.prune && haul.hosts.directories.isEmpty && haul.logger == nil)
    }

    @Test func fromEnvironmentReadsWhatTheCLIReads() {
        let haul = Haul.fromEnvironment(Self.variables.merging(["HAUL_DEBUG": "0"]) { $1 })
        #expect(haul.store.root == "/srv/elsewhere" && !haul.prune)
        #expect(haul.configuration.directIO && !haul.configuration.debugTrace)
        #expect(haul.hosts.directories == ["/etc/elsewhere"])
        #expect(haul.auth.credentials.explicit["registry.example"]?.username == "ci")
        #expect(haul.auth.credentials.dockerConfigPath == "/home/elsewhere/.docker/config.json")
        #expect(haul.auth.ollamaKeyPath == "/home/elsewhere/.ollama/id_ed25519")
        #expect(
            haul.auth.huggingFace.token == "hf_test" && haul.auth.huggingFace.endpoint == "https://hf-mirror.example")
        let proxied = EngineConfiguration.fromEnvironment([
            "https_proxy": "http://proxy:3128", "SSL_CERT_FILE": "/ca.pem"
        ])
        #expect(proxied.proxies.https == "http://proxy:3128" && proxied.caFile == "/ca.pem")
    }
}
