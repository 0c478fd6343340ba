import Testing

@testable import HaulKit

/// One grammar for the host lists and addresses of the environment: the
/// README's spellings are read, anything else is refused naming the
/// variable.
@Suite struct EnvironmentHostsTests {
    @Test(
        arguments: [
            ("registry.internal", nil, "registry.internal", nil, "registry.internal"),
            ("Registry.Internal:5000", nil, "registry.internal", 5000, "registry.internal:5000"),
            ("http://10.0.0.9:5000", "http", "10.0.0.9", 5000, "10.0.0.9:5000"),
            (" https://mirror.lan/ ", "https", "mirror.lan", nil, "mirror.lan"),
            ("[fd00::1]:5000", nil, "fd00::1", 5000, "[fd00::1]:5000"),
            ("::1", nil, "::1", nil, "[::1]"),
            ("http://[::1]:8080", "http", "::1", 8080, "[::1]:8080"),
            ("127.0.0.1", nil, "127.0.0.1", nil, "127.0.0.1")
        ] as [(String, String?, String, Int?, String)])
    func theREADMEsSpellingsAreRead(text: String, scheme: String?, host: String, port: Int?, authority: String) throws {
        let parsed = try #require(ConfiguredHost(parsing: text))
        #expect(parsed.scheme == scheme && parsed.host == host && parsed.port == port && parsed.authority == authority)
    }

    @Test(arguments: [
        "*", "*.example.com", "ftp://host", "host:0", "host:65536", "host:http", "http://host/path", "[::1",
        "[::1]x", "[nothost]:5", "a b", "host:5:6x", ".host", "http://", "host:-1", "host:+5"
    ])
    func anythingElseIsRefused(text: String) {
        #expect(ConfiguredHost(parsing: text) == nil)
        #expect(throws: ConfigurationError.self) {
            try EnvironmentHosts.list("HAUL_X", ["HAUL_X": "ok.example, " + text])
        }
    }

    @Test func aListIsReadWholeAndAnErrorNamesTheVariable() throws {
        let hosts = try EnvironmentHosts.list(
            "HAUL_PULL_THROUGH", ["HAUL_PULL_THROUGH": "http://127.0.0.1:5000, a.b,,"])
        #expect(hosts.map(\.description) == ["http://127.0.0.1:5000", "a.b"])
        do {
            _ = try EnvironmentHosts.list("HAUL_ALLOW_PRIVATE", ["HAUL_ALLOW_PRIVATE": "a.b, http://x/y"])
            Issue.record("accepted a path")
        } catch {
            #expect(error.description.hasPrefix("HAUL_ALLOW_PRIVATE: http://x/y is not"))
        }
        #expect(try EnvironmentHosts.list("HAUL_X", [:]).isEmpty)
    }

    /// `HAUL_PULL_THROUGH=http://host:port`, the README's spelling, exempts
    /// its host from the daemon's address rule (it exempted "http").
    @Test func aPullThroughRegistryWithASchemeIsExempt() {
        let rule = PrivateAddresses.daemon([
            "HAUL_PULL_THROUGH": "http://10.1.2.3:5000", "HAUL_ALLOW_PRIVATE": "[fd00::9]:1"
        ])
        #expect(rule == .onlyListed(["10.1.2.3", "fd00::9"]))
    }

    @Test(arguments: [
        ("9464", "127.0.0.1", 9464), (":9464", "", 9464), ("0.0.0.0:9464", "0.0.0.0", 9464),
        ("[::1]:9464", "::1", 9464), ("http://127.0.0.1:9", "127.0.0.1", 9), ("localhost:9464", "localhost", 9464)
    ])
    func aListenAddressTakesABarePort(text: String, host: String, port: Int) throws {
        let address = try #require(try EnvironmentHosts.listenAddress("HAUL_METRICS_ADDR", ["HAUL_METRICS_ADDR": text]))
        #expect(address.host == host && address.port == port)
    }

    @Test(arguments: ["127.0.0.1", "9464x", "0", "70000", "host:port", "https://h:1", "[::1]", "a:b:c"])
    func aListenAddressWithoutAPortIsRefused(text: String) {
        #expect(throws: ConfigurationError.self) {
            try EnvironmentHosts.listenAddress("HAUL_METRICS_ADDR", ["HAUL_METRICS_ADDR": text])
        }
        #expect(try! EnvironmentHosts.listenAddress("HAUL_METRICS_ADDR", ["HAUL_METRICS_ADDR": " "]) == nil)
    }
}

/// Text from outside quoted in an error or a log line: C0 and C1 controls,
/// DEL, U+2028/U+2029 and bidirectional overrides become `?`.
@Suite struct QuotedTextTests {
    @Test func controlsSeparatorsAndOverridesAreReplaced() {
        let hostile = "a\u{1B}[2Jb\u{85}c\u{9B}d\u{2028}e\u{2029}f\u{202E}g\u{2066}h\u{7F}i"
        #expect(HaulError.quoted(hostile) == "a?[2Jb?c?d?e?f?g?h?i")
        #expect(HaulError.quoted("llama3.2 — ünïcode ✓") == "llama3.2 — ünïcode ✓")
    }
}
