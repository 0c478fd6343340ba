import Testing

@testable import HaulKit

@Suite struct ModelNameTests {
    @Test func defaultsFillMissingParts() throws {
        let n = try ModelName(parsing: "llama3")
        #expect(n.host == "registry.ollama.ai")
        #expect(n.namespace == "library")
        #expect(n.model == "llama3")
        #expect(n.tag == "latest")
        #expect(n.displayShortest == "llama3:latest")
    }

    @Test func everyFormOfTheGrammar() throws {
        let cases: [(String, String, String, String, String)] = [
            ("llama3.2:1b", "registry.ollama.ai", "library", "llama3.2", "1b"),
            ("jmorgan/test", "registry.ollama.ai", "jmorgan", "test", "latest"),
            ("127.0.0.1:5000/library/sample:v1", "127.0.0.1:5000", "library", "sample", "v1"),
            ("hf.co/bartowski/Qwen-GGUF:Q4_K_M", "hf.co", "bartowski", "Qwen-GGUF", "Q4_K_M"),
            ("https://example.com/ns/m:t", "example.com", "ns", "m", "t"),
            ("localhost:5000/ns/m", "localhost:5000", "ns", "m", "latest")
        ]
        for (raw, host, ns, model, tag) in cases {
            let n = try ModelName(parsing: raw)
            #expect((n.host, n.namespace, n.model, n.tag) == (host, ns, model, tag), "\(raw)")
        }
    }

    @Test func displayShortestKeepsWhatDiffersFromDefaults() throws {
        #expect(try ModelName(parsing: "ns/m:t").displayShortest == "ns/m:t")
        #expect(try ModelName(parsing: "h.io/library/m").displayShortest == "h.io/library/m:latest")
    }

    @Test(arguments: [
        "", ":", "model:", ":tag", "/model", "ns/", "a/b/c/d", "a/b/c/d/e", "model@sha256:abcd",
        "../etc/passwd", "ns/..:latest", ".hidden", "-dash", "mo del", "m\u{0}", "modèle", "ns/m:t/x",
        "ftp://host/ns/m", "host//m", String(repeating: "a", count: 81),
        "ns/" + String(repeating: "b", count: 81) + "/m",
        "[::1/ns/m", "[::1]x/ns/m", "[::1]:0/ns/m", "[::1]:70000/ns/m", "[1.2.3.4]/ns/m", "[fe80::1%eth0]/ns/m",
        "[::g]/ns/m", "[::1]:80:80/ns/m"
    ])
    func rejectsInvalidNames(_ raw: String) {
        #expect(throws: HaulError.invalidModelName) { try ModelName(parsing: raw) }
    }

    @Test func lengthLimitsAreInclusive() throws {
        _ = try ModelName(parsing: String(repeating: "m", count: 80) + ":" + String(repeating: "t", count: 80))
        _ = try ModelName(parsing: String(repeating: "h", count: 350) + "/ns/m")
        #expect(throws: HaulError.invalidModelName) {
            try ModelName(parsing: String(repeating: "h", count: 351) + "/ns/m")
        }
    }

    @Test func manifestPathComponentsNeverEscape() throws {
        let n = try ModelName(parsing: "host.io:8080/ns/model.v2:tag-1")
        #expect(n.manifestPathComponents == ["host.io:8080", "ns", "model.v2", "tag-1"])
        for part in n.manifestPathComponents {
            #expect(!part.contains("/") && !part.hasPrefix("."))
        }
    }

    @Test func ipv6LiteralHosts() throws {
        let n = try ModelName(parsing: "[::1]:5000/team/model:v1")
        #expect(n.host == "[::1]:5000" && n.namespace == "team" && n.model == "model" && n.tag == "v1")
        #expect(try ModelName(parsing: "[2001:db8::7]/library/m").displayShortest == "[2001:db8::7]/library/m:latest")
        #expect(RegistryHost.upstream(n, insecure: true).origin == "http://[::1]:5000")
    }
}
