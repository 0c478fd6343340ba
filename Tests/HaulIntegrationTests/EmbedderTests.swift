import Foundation
import HaulKit
import HaulTestSupport
import Testing

/// HaulKit as another package consumes it: `Examples/Embedder` depends on
/// Haul *by version* (`from: "0.1.0"`) through a throw-away git repository
/// of this checkout with a `0.1.0` tag, builds on its own, and pulls a
/// model with whole-model progress. SwiftPM refuses a versioned dependency
/// whose products use `unsafeFlags`, so such a change fails here.
@Suite(.serialized) struct EmbedderTests {
    @Test(.timeLimit(.minutes(15))) func theEmbedderExampleBuildsAgainstATaggedVersionAndPulls() async throws {
        let work = TempDir("haul-embedder")
        let checkout = testsDirectory.deletingLastPathComponent().path
        // The checkout as it is now (tracked and new files, not ignored ones),
        // committed and tagged in a repository of its own.
        let repo = work.sub("haul")
        let files = try run(
            "/usr/bin/git", ["-C", checkout, "ls-files", "-z", "--cached", "--others", "--exclude-standard"])
        try #require(files.status == 0, "\(files.stderr)")
        for file in files.stdout.split(separator: "\0").map(String.init)
        where FileManager.default.fileExists(atPath: checkout + "/" + file) && !file.hasPrefix("Examples/") {
            try FileManager.default.createDirectory(
                at: URL(fileURLWithPath: repo + "/" + file).deletingLastPathComponent(),
                withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: checkout + "/" + file, toPath: repo + "/" + file)
        }
        let git = ["-C", repo, "-c", "user.name=test", "-c", "user.email=test@localhost", "-c", "commit.gpgsign=false"]
        for step in [["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "haul"], ["tag", "0.1.0"]] {
            let r = try run("/usr/bin/git", git + step)
            try #require(r.status == 0, "git \(step): \(r.stderr)")
        }
        // The example, copied, so its resolution files stay out of the checkout.
        let example = work.sub("Embedder")
        try FileManager.default.copyItem(atPath: checkout + "/Examples/Embedder", toPath: example)
        try? FileManager.default.removeItem(atPath: example + "/Package.resolved")
        try? FileManager.default.removeItem(atPath: example + "/.build")
        let build = try run(
            Self.swiftExecutable, ["build", "--package-path", example, "--scratch-path", work.sub("build")],
            environment: ["HAUL_PACKAGE_URL": "file://" + repo])
        try #require(
            build.status == 0, "the embedder did not build against haul 0.1.0:\n\(build.stdout)\(build.stderr)")
        let resolved = try String(contentsOfFile: example + "/Package.resolved", encoding: .utf8)
        #expect(resolved.contains("\"version\" : \"0.1.0\""), "resolved by version: \(resolved)")

        // It pulls: a model of three blobs from the test registry, whole-model
        // progress on stdout.
        let registryRoot = TempDir("haul-embedder-registry")
        let model = try TestModel.make(root: registryRoot.path, name: "library/sample:latest", layers: ["24M", "2K"])
        let registry = try TestRegistry(root: registryRoot.path, cdn: true)
        defer { registry.stop() }
        let models = TempDir("haul-embedder-models")
        let pull = try run(
            work.sub("build/debug/Embedder"), [models.path, "\(registry.host)/library/sample", "--insecure"])
        #expect(pull.status == 0, "\(pull.stdout)\(pull.stderr)")
        let lines = pull.stdout.split(separator: "\n").map(String.init)
        let total = model.layers.reduce(0) { $0 + $1.size }
        #expect(lines.contains { $0.hasPrefix("done: \(total)/\(total) bytes (100%)") }, "\(pull.stdout)")
        #expect(
            lines.last == "pulled \(registry.host)/library/sample:latest: \(model.layers.count) blobs", "\(pull.stdout)"
        )
        let stored = ModelStore(root: models.path).list()
        #expect(stored.map(\.name.model) == ["sample"])
    }

    /// `swift` from PATH, else swift.org's usual place (as the Makefile).
    static var swiftExecutable: String {
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init)
        for directory in path + ["/opt/swift/usr/bin"] {
            let candidate = directory + "/swift"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return "/usr/bin/swift"
    }
}
