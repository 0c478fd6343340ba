import Foundation
import HaulTestSupport
import Testing

/// `scripts/deps`, which `make demo`, `make test` and CI start with: as a
/// user who is not root it never runs the compiler into a missing header
/// but prints the one command that installs what is missing, and stops
/// with status 2; a Swift older than the package needs is named. The
/// machine's own state is stood in for by small programs ahead on PATH.
struct SetupTests {
    static let deps = testsDirectory.deletingLastPathComponent().appendingPathComponent("scripts/deps").path

    /// A directory of stand-ins: `id` says uid 1000, `dpkg-query` knows no
    /// package, and `swift` is the given version when there is one.
    static func standIns(swift version: String?) throws -> TempDir {
        let dir = TempDir("haul-deps")
        var programs = ["id": "echo 1000", "dpkg-query": "exit 1"]
        if let version { programs["swift"] = "echo 'Swift version \(version) (swift-\(version)-RELEASE)'" }
        for (name, body) in programs {
            try "#!/bin/sh\n\(body)\n".write(toFile: dir.sub(name), atomically: true, encoding: .utf8)
            chmod(dir.sub(name), 0o755)
        }
        return dir
    }

    @Test func aUserWhoIsNotRootGetsTheExactCommandAndStatusTwo() throws {
        let shims = try Self.standIns(swift: "6.3")
        let path = shims.path + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
        let r = try run("/bin/bash", [Self.deps, "test"], environment: ["PATH": path])
        #expect(r.status == 2, "\(r.stdout)\(r.stderr)")
        let packages = try run("/bin/bash", [Self.deps, "--list", "test"]).stdout.split(separator: "\n").joined(
            separator: " ")
        #expect(packages.contains("libcurl4-openssl-dev") && packages.contains("nginx-light"))
        #expect(
            r.stderr.contains("sudo sh -c 'apt-get update && apt-get install -y --no-install-recommends \(packages)'"),
            "\(r.stderr)")
    }

    @Test func anOldSwiftIsNamedBeforeAnythingElse() throws {
        let shims = try Self.standIns(swift: "5.10")
        let path = shims.path + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
        let r = try run("/bin/bash", [Self.deps, "build"], environment: ["PATH": path])
        #expect(r.status == 2 && r.stderr.contains("is Swift 5.10; Haul needs 6.1 or newer"), "\(r.stderr)")
        #expect(!r.stderr.contains("apt-get"), "Swift is checked first")
    }

    /// `make install` installs completions that `haul` generates: bash's
    /// offers the subcommands; zsh's and fish's name them too.
    @Test func completionsOfferTheSubcommands() throws {
        let bash = try run(
            "/bin/bash",
            [
                "-c",
                """
                source <('\(haulBinary)' --generate-completion-script bash)
                COMP_WORDS=(haul ""); COMP_CWORD=1; COMP_LINE="haul "; COMP_POINT=5
                _haul; echo "${COMPREPLY[@]}"
                """
            ])
        let offered = Set(bash.stdout.split(whereSeparator: \.isWhitespace).map(String.init))
        #expect(
            bash.status == 0 && offered.isSuperset(of: ["pull", "serve", "list", "rm", "partials", "import", "export"]),
            "\(bash.stdout)\(bash.stderr)")
        for shell in ["zsh", "fish"] {
            let script = try run(haulBinary, ["--generate-completion-script", shell])
            #expect(script.status == 0 && script.stdout.contains("partials"), "\(shell)")
        }
    }
}
