import Foundation
import HaulTestSupport
import Testing

@testable import HaulKit

/// containerd's hosts.toml, as Haul reads it (containerd `docs/hosts.md`).
@Suite struct HostsDirectoryTests {
    let name = try! ModelName(parsing: "registry.ollama.ai/library/llama3:8b")
    var upstream: RegistryHost { .upstream(name, insecure: false) }

    func parse(_ text: String) throws(HaulError) -> [RegistryHost] {
        try HostsDirectory.parse(text, path: "/etc/haul/hosts.d/registry.ollama.ai/hosts.toml", upstream: upstream)
    }

    @Test func mirrorsComeFirstInFileOrderThenTheServer() throws {
        let hosts = try parse(
            """
            server = "https://registry.ollama.ai"

            [host."https://zeta.mirror.example"]
              capabilities = ["pull"]

            [host."http://alpha.mirror.example:5000"]
              capabilities = ["pull", "resolve"]
              skip_verify = true
              [host."http://alpha.mirror.example:5000".header]
                x-team = "ml"
                x-tags = ["a", "b"]
            """)
        #expect(
            hosts.map(\.root) == [
                "https://zeta.mirror.example/v2", "http://alpha.mirror.example:5000/v2",
                "https://registry.ollama.ai/v2"
            ])
        #expect(hosts.map(\.isMirror) == [true, true, false])
        #expect(hosts[0].capabilities == .pull && hosts[1].capabilities == .all && hosts[2].capabilities == .all)
        #expect(hosts[1].skipVerify && hosts[1].headers == ["x-tags: a", "x-tags: b", "x-team: ml"])
        // containerd's `ns` on mirror requests only.
        #expect(
            hosts[0].manifestURL(name)
                == "https://zeta.mirror.example/v2/library/llama3/manifests/8b?ns=registry.ollama.ai")
        #expect(
            hosts[2].blobURL(name, try Digest(parsing: "sha256:" + String(repeating: "0", count: 64)))
                == "https://registry.ollama.ai/v2/library/llama3/blobs/sha256:" + String(repeating: "0", count: 64))
    }

    @Test func withoutServerTheRegistryItselfIsLast() throws {
        let hosts = try parse(#"[host."https://cache.internal/proxy"]"#)
        #expect(hosts.map(\.root) == ["https://cache.internal/proxy/v2", "https://registry.ollama.ai/v2"])
        let overridden = try parse(
            """
            [host."https://cache.internal/v2/ollama"]
            override_path = true
            """)
        #expect(overridden.first?.root == "https://cache.internal/v2/ollama")
    }

    /// (text, line, words in the message): every refusal names where.
    static let refusals: [(String, Int?, String)] = [
        ("server = \"https://x\"\n[host.\"https://m\"\ncapabilities = 1", 2, "expected ']'"),
        ("mirrors = 1", 1, "unknown key \"mirrors\""),
        ("\n[host.\"https://m\"]\ncapabilities = [\"pull\", \"fly\"]", 2, "unknown capability \"fly\""),
        ("[host.\"https://m\"]\nskip_verfy = true", 1, "unknown key \"skip_verfy\""),
        ("[host.\"ftp://m\"]", 1, "not an http or https URL"),
        ("[host.\"https://m\"]\nca = \"/nonexistent/ca.pem\"", 1, "ca file /nonexistent/ca.pem does not exist"),
        ("server = 5", 1, "\"server\" must be a URL string"),
        ("[host.\"https://m\".header]\nx = \"a\\nb\"", 1, "line break")
    ]

    @Test(arguments: refusals)
    func badFilesAreRefusedWithFileAndLine(text: String, line: Int?, words: String) {
        do {
            _ = try parse(text)
            Issue.record("accepted: \(text)")
        } catch {
            guard case .hostsConfig(let path, let at, let message) = error else {
                Issue.record("\(error)")
                return
            }
            #expect(path.hasSuffix("hosts.toml"))
            #expect(at == line, "\(message)")
            #expect(message.contains(words), "\(message)")
            #expect(error.description.hasPrefix(path + (line.map { ":\($0)" } ?? "")))
        }
    }

    @Test func theRegistrysOwnDirectoryWinsOverDefaultAcrossDirectories() throws {
        let a = TempDir("haul-hosts")
        let b = TempDir("haul-hosts")
        let directory = HostsDirectory(directories: [a.path, b.path])
        #expect(directory.file(for: "registry.ollama.ai") == nil)
        #expect(try directory.hosts(for: name, insecure: true) == [.upstream(name, insecure: true)])
        try FileManager.default.createDirectory(atPath: a.sub("_default"), withIntermediateDirectories: true)
        try #"[host."https://default.mirror"]"#.write(
            toFile: a.sub("_default/hosts.toml"), atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: b.sub("registry.ollama.ai"), withIntermediateDirectories: true)
        try #"[host."https://own.mirror"]"#.write(
            toFile: b.sub("registry.ollama.ai/hosts.toml"), atomically: true, encoding: .utf8)
        #expect(try directory.hosts(for: name, insecure: false).first?.root == "https://own.mirror/v2")
        let other = try ModelName(parsing: "example.com/team/model")
        #expect(
            try directory.hosts(for: other, insecure: false).map(\.root) == [
                "https://default.mirror/v2", "https://example.com/v2"
            ])
        #expect(HostsDirectory.fromEnvironment(["HAUL_HOSTS_DIR": "/x:/y"]).directories == ["/x", "/y"])
        #expect(
            HostsDirectory.fromEnvironment(["HOME": "/home/u"]).directories == [
                "/home/u/.config/haul/hosts.d", "/etc/haul/hosts.d"
            ])
    }

    /// A header value with CR LF would inject a header line into every
    /// request to the mirror: "\r\n" is one Character, so the check is by
    /// scalars. Names must be HTTP tokens.
    @Test func headersCannotCarryLineBreaksNulsOrBadNames() throws {
        for bad in [
            "x-a = \"ok\\r\\nInjected: yes\"", "x-a = \"a\\nb\"", "x-a = \"a\\rb\"",
            "\"x a\" = \"v\"", "\"x:a\" = \"v\""
        ] {
            #expect(throws: HaulError.self, "\(bad)") {
                try parse("[host.\"https://m.example\"]\n  [host.\"https://m.example\".header]\n    \(bad)\n")
            }
        }
        #expect(
            try parse("[host.\"https://m.example\"]\n  [host.\"https://m.example\".header]\n    x-ok = \"fine\"\n")[0]
                .headers == ["x-ok: fine"])
    }

    /// Credentials written in a host's URL are refused (they would be sent
    /// and echoed in errors); the message says where they belong and does
    /// not repeat them.
    @Test func credentialsInAURLAreRefusedWithoutEchoingThem() throws {
        for url in ["https://user:s3cret@m.example", "http://s3cret@m.example:5000/v2"] {
            do {
                _ = try parse("[host.\"\(url)\"]\n  capabilities = [\"pull\"]\n")
                Issue.record("accepted \(url)")
            } catch {
                #expect(
                    error.description.contains("HAUL_REGISTRY_AUTH") && !error.description.contains("s3cret"),
                    "\(error)")
            }
            #expect(throws: HaulError.self) { try parse("server = \"\(url)\"\n") }
        }
    }

    /// A relative `ca` is read from the hosts.toml's directory, as containerd
    /// reads it, not from the directory Haul was started in.
    @Test func aRelativeCAIsRelativeToTheFile() throws {
        let dir = TempDir("haul-hosts")
        let file = dir.sub("registry.ollama.ai/hosts.toml")
        try FileManager.default.createDirectory(
            atPath: dir.sub("registry.ollama.ai"), withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: dir.sub("registry.ollama.ai/mirror-ca.pem"), contents: Data("pem".utf8))
        let text = "[host.\"https://m.example\"]\n  ca = \"mirror-ca.pem\"\n"
        let hosts = try HostsDirectory.parse(text, path: file, upstream: upstream)
        #expect(hosts[0].caFile == dir.sub("registry.ollama.ai/mirror-ca.pem"))
        // Present in the working directory only: refused, never read from there.
        let cwd = FileManager.default.currentDirectoryPath
        let planted = TempDir("haul-cwd")
        FileManager.default.createFile(atPath: planted.sub("other-ca.pem"), contents: Data("pem".utf8))
        FileManager.default.changeCurrentDirectoryPath(planted.path)
        defer { FileManager.default.changeCurrentDirectoryPath(cwd) }
        #expect(throws: HaulError.self) {
            try HostsDirectory.parse(
                "[host.\"https://m.example\"]\n  ca = \"other-ca.pem\"\n", path: file, upstream: upstream)
        }
    }
}
