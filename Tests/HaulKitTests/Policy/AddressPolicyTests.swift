import Testing

@testable import HaulKit

/// Which addresses a pull's connections may reach (Ollama's
/// `x/transfer/redirect.go` rules, ollama/ollama#18512 and #18533), and
/// whose hosts are exempt, without a socket.
@Suite struct AddressPolicyTests {
    static func ip(_ text: String) -> IPAddress { IPAddress(text)! }

    @Test(arguments: [
        ("0.0.0.0", false), ("127.0.0.1", false), ("127.1.2.3", false), ("10.0.0.7", false),
        ("172.16.0.1", false), ("172.31.255.255", false), ("172.32.0.1", true), ("192.168.1.5", false),
        ("169.254.169.254", false), ("100.64.0.1", false), ("100.100.2.148", false), ("100.127.255.255", false),
        ("100.128.0.1", true), ("198.18.0.1", false), ("198.19.255.255", false), ("198.20.0.1", true),
        ("224.0.0.1", false), ("255.255.255.255", false), ("203.0.113.10", true), ("8.8.8.8", true),
        ("::", false), ("::1", false), ("fe80::1", false), ("fc00::1", false), ("fd12:3456::1", false),
        ("ff02::1", false), ("2001:db8::1", true), ("2606:4700::1111", true),
        // IPv4-mapped IPv6 is judged as the IPv4 address inside.
        ("::ffff:127.0.0.1", false), ("::ffff:169.254.169.254", false), ("::ffff:8.8.8.8", true)
    ])
    func addressClasses(address: String, isPublic: Bool) {
        #expect(AddressPolicy.isPublic(Self.ip(address)) == isPublic, "\(address)")
    }

    @Test func theRegistryHostIsExemptAtAnyPortAndOthersMustBePublic() {
        let policy = AddressPolicy(exemptHosts: ["registry.internal"])
        #expect(policy.refusal(host: "registry.internal", address: Self.ip("10.0.0.2")) == nil)
        #expect(policy.refusal(host: "REGISTRY.internal:5000", address: Self.ip("10.0.0.2")) == nil)
        let refusal = policy.refusal(host: "cdn.internal", address: Self.ip("169.254.169.254"))
        #expect(refusal?.contains("169.254.169.254, a link-local address: refused") == true, "\(refusal ?? "")")
        #expect(policy.refusal(host: "localhost", address: Self.ip("127.0.0.1"))?.contains("loopback") == true)
        #expect(policy.refusal(host: "cdn.example", address: Self.ip("203.0.113.10")) == nil)
        #expect(AddressPolicy(allowPrivate: true).refusal(host: "cdn.internal", address: Self.ip("10.0.0.1")) == nil)
        #expect(
            AddressPolicy.bare("[::1]:8080") == "::1" && AddressPolicy.bare("Host:1") == "host"
                && AddressPolicy.bare("fe80::1") == "fe80::1")
    }

    @Test func theCLIExemptsItsRegistryAndHuggingFacesChainAndInsecureTurnsTheCheckOff() {
        let hf = RegistryClient.addressPolicy(
            for: .upstream(try! ModelName(parsing: "hf.co/u/r"), insecure: false),
            userInsecure: false, rule: .registryHost)
        for host in ["hf.co", "huggingface.co", "cas-bridge.xethub.hf.co", "us.aws.cdn.hf.co"] {
            #expect(hf.isExempt(host), "\(host)")
        }
        #expect(!hf.isExempt("evil-hf.co") && !hf.isExempt("cdn.example"))
        let plain = RegistryClient.addressPolicy(
            for: .upstream(try! ModelName(parsing: "10.1.1.1:5000/ns/m"), insecure: false),
            userInsecure: false, rule: .registryHost)
        #expect(plain.isExempt("10.1.1.1") && !plain.isExempt("10.1.1.2") && !plain.allowPrivate)
        let insecure = RegistryClient.addressPolicy(
            for: .upstream(try! ModelName(parsing: "10.1.1.1:5000/ns/m"), insecure: true),
            userInsecure: true, rule: .registryHost)
        #expect(insecure.allowPrivate)
    }

    /// A daemon exempts only what its operator listed: not the registry a
    /// client names, and a client's `insecure` changes nothing.
    @Test func aDaemonExemptsOnlyWhatItsOperatorListed() {
        let rule = PrivateAddresses.daemon([
            "HAUL_ALLOW_PRIVATE": "registry.internal:5000, 10.0.0.9", "HAUL_PULL_THROUGH": "mirror.lan"
        ])
        #expect(rule == .onlyListed(["registry.internal", "10.0.0.9", "mirror.lan"]))
        let asked = RegistryClient.addressPolicy(
            for: .upstream(try! ModelName(parsing: "127.0.0.1:8080/admin/x"), insecure: true),
            userInsecure: true, rule: rule)
        #expect(!asked.allowPrivate && !asked.isExempt("127.0.0.1"))
        #expect(asked.refusal(host: "127.0.0.1", address: Self.ip("127.0.0.1")) != nil)
        #expect(asked.isExempt("registry.internal"))
        #expect(PrivateAddresses.daemon([:]) == .onlyListed([]))
    }
}

/// The proxy a transfer may reach without an address check: its host and
/// port as curl reads the proxy's URL.
@Suite struct ProxyEndpointTests {
    @Test(arguments: [
        ("http://127.0.0.1:3128", "127.0.0.1", 3128), ("127.0.0.1:3128", "127.0.0.1", 3128),
        ("http://proxy.corp", "proxy.corp", 1080), ("https://proxy.corp", "proxy.corp", 443),
        ("http://user:pw@[::1]:8080/", "::1", 8080), ("socks5h://10.0.0.1:1081", "10.0.0.1", 1081)
    ])
    func aProxyIsItsHostAndPort(url: String, host: String, port: Int) throws {
        let endpoint = try #require(ProxyEndpoint(url))
        #expect(endpoint.host == host && endpoint.port == port)
    }

    @Test func onlyTheProxysOwnAddressAndPortAreItsEndpoint() throws {
        let endpoint = try #require(ProxyEndpoint("http://127.0.0.1:3128"))
        #expect(endpoint.isEndpoint(try #require(IPAddress("127.0.0.1")), port: 3128))
        #expect(endpoint.isEndpoint(try #require(IPAddress("::ffff:127.0.0.1")), port: 3128))
        #expect(!endpoint.isEndpoint(try #require(IPAddress("127.0.0.1")), port: 6379), "another port of its host")
        #expect(!endpoint.isEndpoint(try #require(IPAddress("127.0.0.2")), port: 3128))
        let named = try #require(ProxyEndpoint("http://localhost:3128"))
        #expect(named.isEndpoint(try #require(IPAddress("127.0.0.1")), port: 3128))
    }
}
