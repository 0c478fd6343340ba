import HaulKit
import Testing

@testable import HaulServer

/// The daemon's Origin and Host rules, as Ollama derives them
/// (`server/routes.go`: `allowedHosts`, `allowedHostsMiddleware`;
/// `envconfig/config.go`: `AllowedOrigins`).
@Suite struct AccessPolicyTests {
    @Test func theRulesMatchOllamasDerivation() {
        let policy = AccessPolicy(
            .fromEnvironment(
                ["OLLAMA_ORIGINS": "https://*.example"], listeningOn: OllamaHost(parsing: "127.0.0.1:11434")))
        #expect(policy.allows(origin: "https://a.example"))
        #expect(!policy.allows(origin: "https://a.example.evil"))
        #expect(!policy.allows(origin: "http://localhost.evil"))
        #expect(policy.allows(origin: "http://0.0.0.0:8080"))
        #expect(!policy.allows(origin: "null"))
        #expect(!policy.allows(host: "169.254.1.1:80") || LocalAddresses.contains(IPAddress("169.254.1.1")!))
        #expect(policy.allows(host: "[fd00::1]:80"))
        #expect(!policy.allows(host: "localhost.evil"))
        #expect(AccessPolicy(HaulDaemon.Access(checkHost: false)).allows(host: "anything.example"))
        #expect(AccessPolicy.hostPart(of: "[::1]:11434") == "::1")
        #expect(AccessPolicy.hostPart(of: "::1") == "::1")
        #expect(AccessPolicy.hostPart(of: "a.example:80") == "a.example")
    }
}
