import Foundation
import HaulTestSupport
import Testing

@testable import HaulKit

/// OLLAMA_HOST, Ollama's boolean variables, and reading an /api/pull
/// stream back: the pieces the daemon and `haul pull --remote` share.
struct DaemonConfigTests {
    @Test(arguments: [
        ("", "http", "127.0.0.1", 11434, "", "http://127.0.0.1:11434"),
        ("  \"0.0.0.0\" ", "http", "0.0.0.0", 11434, "", "http://127.0.0.1:11434"),
        (":8080", "http", "", 8080, "", "http://127.0.0.1:8080"),
        ("1.2.3.4:56789", "http", "1.2.3.4", 56789, "", "http://1.2.3.4:56789"),
        ("http://example.com", "http", "example.com", 80, "", "http://example.com:80"),
        ("https://example.com", "https", "example.com", 443, "", "https://example.com:443"),
        ("example.com:56789/path/", "http", "example.com", 56789, "path", "http://example.com:56789/path"),
        ("ollama.com", "https", "ollama.com", 443, "", "https://ollama.com:443"),
        ("[::1]:9000", "http", "::1", 9000, "", "http://[::1]:9000"),
        ("[::]", "http", "::", 11434, "", "http://[::1]:11434"),
        ("[fe80::1]", "http", "fe80::1", 11434, "", "http://[fe80::1]:11434"),
        ("localhost:99999", "http", "localhost", 11434, "", "http://localhost:11434"),
        ("localhost:http", "http", "localhost", 11434, "", "http://localhost:11434")
    ])
    func ollamaHostFollowsOllamasRules(
        _ raw: String, _ scheme: String, _ host: String, _ port: Int, _ path: String, _ client: String
    ) {
        let parsed = OllamaHost(parsing: OllamaEnvironment.string("OLLAMA_HOST", ["OLLAMA_HOST": raw]))
        #expect(
            parsed.scheme == scheme && parsed.host == host && parsed.port == port && parsed.path == path,
            "\(raw) -> \(parsed)")
        #expect(parsed.clientURL == client)
        #expect((parsed.warning != nil) == raw.hasPrefix("localhost:"))
    }

    @Test func booleansFollowGo() {
        for (value, expected) in [
            ("", false), ("1", true), ("true", true), ("0", false), ("false", false),
            ("FALSE", false), ("yes", true), (" 'f' ", false)
        ] {
            #expect(OllamaEnvironment.bool("OLLAMA_NOPRUNE", ["OLLAMA_NOPRUNE": value]) == expected, "\(value)")
        }
        #expect(!OllamaEnvironment.bool("OLLAMA_NOPRUNE", [:]))
    }

    @Test func pullStreamLinesReadBackIntoEvents() throws {
        let digest = Digest(bytes: SHA256.hash(Array("x".utf8)))
        let progress = PullEvent.progress(BlobProgress(digest: digest, total: 10, completed: 4, hashed: 4))
        let events: [PullEvent] = [
            .pullingManifest, progress, .verifying, .writingManifest, .removingUnusedLayers,
            .status("couldn't remove unused layers: busy"), .success
        ]
        for event in events {
            let line = try #require(ProgressJSON.line(for: event))
            #expect(try ProgressJSON.parse(Array(line.utf8)) == .event(event), "\(line)")
        }
        // `completed` omitted means 0.
        let started = try ProgressJSON.parse(
            Array(#"{"status":"pulling 2d711642b726","digest":"\#(digest)","total":10}"#.utf8))
        #expect(started == .event(.progress(BlobProgress(digest: digest, total: 10, completed: 0, hashed: 0))))
        #expect(try ProgressJSON.parse(Array(#"{"error":"boom"}"#.utf8)) == .error("boom"))
        #expect(try ProgressJSON.parse(Array("  \r".utf8)) == nil)
        #expect(throws: HaulError.self) { try ProgressJSON.parse(Array("<html>".utf8)) }
    }
}
