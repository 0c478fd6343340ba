import Foundation
import HaulTestSupport
import Testing

@testable import HaulKit

/// A registry is a remote party: manifests, redirects and blob sizes it
/// serves can be hostile. Each case must end in a clear error, with no file
/// outside the models directory and nothing under a final blob name.
@Suite(.serialized) struct HostileRegistryTests {
    static let good = "sha256:" + String(repeating: "a", count: 64)
    static let config: [UInt8] = Array("{}".utf8)
    static let configDigest = Digest(bytes: SHA256.hash(config))

    /// A registry directory holding `manifest` as library/evil:latest.
    static func registry(manifest: [UInt8], blobs: [String: [UInt8]] = [:]) throws -> (TempDir, TestRegistry) {
        let dir = TempDir("haul-hostile")
        try FileManager.default.createDirectory(
            atPath: dir.sub("manifests/library/evil"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: dir.sub("blobs"), withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: dir.sub("manifests/library/evil/latest"), contents: Data(manifest))
        for (name, bytes) in blobs.merging([configDigest.fileName: config], uniquingKeysWith: { a, _ in a }) {
            FileManager.default.createFile(atPath: dir.sub("blobs/" + name), contents: Data(bytes))
        }
        return (dir, try TestRegistry(root: dir.path, cdn: false))
    }

    static func manifest(layers: [[String: Any]]) -> [UInt8] {
        let m: [String: Any] = [
            "schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": [
                "mediaType": "application/vnd.docker.container.image.v1+json", "digest": configDigest.description,
                "size": config.count
            ],
            "layers": layers
        ]
        return Array(try! JSONSerialization.data(withJSONObject: m))
    }

    /// Pulls library/evil into `<sandbox>/models` and checks nothing else
    /// appeared in the sandbox and no blob is stored.
    func pullFails(_ registry: TestRegistry, sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
        let sandbox = TempDir("haul-sandbox")
        let out = try haul(["pull", "--insecure", "\(registry.host)/library/evil"], models: sandbox.sub("models"))
        #expect(out.status == 1, "\(out.stderr)", sourceLocation: sourceLocation)
        #expect(FileSystem.listDirectory(sandbox.path).allSatisfy { $0 == "models" }, sourceLocation: sourceLocation)
        // Blobs that verified may stay (as with Ollama); nothing else may.
        for name in FileSystem.listDirectory(sandbox.sub("models/blobs")) {
            let bytes = try FileSystem.readFile(sandbox.sub("models/blobs/" + name), limit: 64 << 20)
            #expect(
                Digest(bytes: SHA256.hash(bytes)).fileName == name, "unverified \(name)", sourceLocation: sourceLocation
            )
        }
        #expect(
            !FileSystem.exists(sandbox.sub("models/manifests/\(registry.host)/library/evil/latest")),
            sourceLocation: sourceLocation)
        return out.stderr
    }

    @Test func digestsThatWouldBecomePathsAreRefused() throws {
        for digest in [
            "sha256:../../../../tmp/haul-escape", "sha256:" + String(repeating: "A", count: 64),
            "sha512:" + String(repeating: "a", count: 128), "sha256:" + String(repeating: "a", count: 63) + "/",
            "sha256:" + String(repeating: "a", count: 63) + "\u{0}"
        ] {
            let (dir, registry) = try Self.registry(
                manifest: Self.manifest(layers: [
                    ["mediaType": "application/vnd.ollama.image.model", "digest": digest, "size": 5]
                ]))
            let err = try withExtendedLifetime(dir) { try pullFails(registry) }
            #expect(err.contains("invalid manifest") && err.contains("invalid digest"), "\(err)")
        }
        #expect(!FileSystem.exists("/tmp/haul-escape"))
    }

    @Test func impossibleSizesAndOversizeManifestsAreRefused() throws {
        let (dir1, negative) = try Self.registry(
            manifest: Self.manifest(layers: [
                ["mediaType": "application/vnd.ollama.image.model", "digest": Self.good, "size": -1]
            ]))
        let err1 = try withExtendedLifetime(dir1) { try pullFails(negative) }
        #expect(err1.contains("size -1 out of range"), "\(err1)")

        let padding = String(repeating: " ", count: Manifest.maxBytes + 10)
        let (dir2, huge) = try Self.registry(manifest: Self.manifest(layers: []) + Array(padding.utf8))
        let err2 = try withExtendedLifetime(dir2) { try pullFails(huge) }
        #expect(err2.contains("larger than"), "\(err2)")
    }

    @Test func aBlobLargerThanItsManifestSaysIsNeverStored() throws {
        let data = [UInt8](repeating: 1, count: 3 << 20)
        let digest = Digest(bytes: SHA256.hash(data))
        let (dir, registry) = try Self.registry(
            manifest: Self.manifest(layers: [
                [
                    "mediaType": "application/vnd.ollama.image.model",
                    "digest": digest.description, "size": 1 << 20
                ]
            ]),
            blobs: [digest.fileName: data])
        let err = try withExtendedLifetime(dir) { try pullFails(registry) }
        #expect(err.contains("the server's blob is 3145728 bytes, the manifest says 1048576"), "\(err)")
    }

    @Test func redirectsToOtherSchemesAndRedirectLoopsAreRefused() async throws {
        let data = [UInt8](repeating: 2, count: 1 << 20)
        let digest = Digest(bytes: SHA256.hash(data))
        let blobs = [digest.fileName: data]
        let manifest = Self.manifest(layers: [
            [
                "mediaType": "application/vnd.ollama.image.model",
                "digest": digest.description, "size": data.count
            ]
        ])
        let (dir, registry) = try Self.registry(manifest: manifest, blobs: blobs)
        try await registry.arm([
            [
                "kind": "status", "status": 307, "headers": ["Location": "file:///etc/passwd"],
                "min_size": 1 << 20, "times": 100
            ]
        ])
        var err = try pullFails(registry)
        #expect(err.contains("refusing redirect to \"file:///etc/passwd\": only http and https are followed"), "\(err)")

        let loop = "http://\(registry.host)/v2/library/evil/blobs/\(digest)"
        try await registry.arm([
            [
                "kind": "status", "status": 307, "headers": ["Location": loop],
                "min_size": 1 << 20, "times": 100
            ]
        ])
        err = try withExtendedLifetime(dir) { try pullFails(registry) }
        #expect(err.contains("maximum redirects exceeded"), "\(err)")
    }

    /// An answer that never ends must be cut off by a bound, not by memory
    /// running out: headers that go on forever, and a 200 that keeps
    /// sending past the blob's size.
    @Test func endlessHeadersAndOverlongBodiesAreCutOff() async throws {
        let blob = (0..<(2 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 13) }
        let digest = Digest(bytes: SHA256.hash(blob))
        let (dir, registry) = try Self.registry(
            manifest: Self.manifest(layers: [
                ["mediaType": "application/vnd.ollama.image.model", "digest": digest.description, "size": blob.count]
            ]), blobs: [digest.fileName: blob])
        defer { withExtendedLifetime(dir) {} }
        do {
            try await registry.arm([["kind": "endless-header", "target": "manifest", "times": 10]])
            let sandbox = TempDir("haul-sandbox")
            let (headers, headerRSS) = try haulMeasured(
                ["pull", "--insecure", "\(registry.host)/library/evil"], models: sandbox.sub("models"))
            #expect(
                headers.status == 1
                    && headers.stderr.contains("Error: pull model manifest: Get \"http://\(registry.host)/"),
                "\(headers.stderr)")
            #expect(
                headers.stderr.lowercased().contains("header"), "the error should name the headers: \(headers.stderr)")
            #expect(headerRSS < 100, "peak RSS \(headerRSS) MiB")
            // The same from a blob request: said in words, not curl's
            // "Out of memory".
            try await registry.arm([["kind": "endless-header", "times": 100]])
            let blobHeaders = try haul(
                ["pull", "--insecure", "\(registry.host)/library/evil"], models: sandbox.sub("models3"))
            #expect(
                blobHeaders.status == 1 && blobHeaders.stderr.contains("response headers are larger than Haul accepts"),
                "\(blobHeaders.stderr)")

            // A 200 with no length that runs 64 MiB past the blob: Haul stops
            // reading at the promised size and closes the connection; what
            // it kept is then judged by the digest like any other bytes.
            try await registry.arm([["kind": "overlong", "extra_mib": 64, "times": 100]])
            let (body, bodyRSS) = try haulMeasured(
                ["pull", "--insecure", "\(registry.host)/library/evil"], models: sandbox.sub("models2"))
            #expect(body.status == 0, "\(body.stderr)")
            #expect(bodyRSS < 100, "peak RSS \(bodyRSS) MiB")
            #expect(try await registry.counter("overlong_sent") < 24 << 20, "Haul kept reading past the blob's end")
            let stored = try FileSystem.readFile(sandbox.sub("models2/blobs/" + digest.fileName), limit: 4 << 20)
            #expect(stored == blob)
        }
    }

    /// A registry on HTTPS whose blobs redirect to plain HTTP: refused, and
    /// --insecure does not change that (Ollama #18512: it relaxes address
    /// checks, never the scheme). With --insecure a name means plain http,
    /// so the https registry is named as a hosts.toml `server`.
    @Test func anHTTPSToHTTPDowngradeIsRefusedEvenWithInsecure() async throws {
        let source = TempDir("haul-downgrade-source")
        let model = try TestModel.make(root: source.path, name: "library/down:latest", layers: ["1M"])
        let cdn = try TestRegistry(root: source.path, cdn: false)
        let pki = try TestPKI()
        let registry = try await DockerRegistry(tls: pki, redirectBlobsTo: "http://\(cdn.host)")
        try registry.push(source: source.path, name: "library/down:latest", ca: pki.caCert)
        let hosts = TempDir("haul-hosts")
        try FileManager.default.createDirectory(atPath: hosts.sub(registry.host), withIntermediateDirectories: true)
        try "server = \"https://\(registry.host)\"\nca = \"\(pki.caCert)\"\n"
            .write(toFile: hosts.sub(registry.host + "/hosts.toml"), atomically: true, encoding: .utf8)
        for extra in [["--ca-file", pki.caCert], ["--insecure", "--hosts-dir", hosts.path]] {
            let models = TempDir("haul-models")
            let r = try haul(["pull", "\(registry.host)/library/down"] + extra, models: models.path)
            #expect(r.status == 1, "\(extra) \(r.stderr)")
            #expect(r.stderr.contains("refusing redirect from https to http (\"http://\(cdn.host)/"), "\(r.stderr)")
            #expect(r.stderr.contains("--insecure does not change that"))
            for layer in model.layers {
                #expect(try await cdn.requests(layer.digest) == 0, "nothing may be fetched over the downgraded URL")
                #expect(!FileSystem.exists(ModelStore(root: models.path).blobPath(layer.digest)))
            }
        }
    }
}
