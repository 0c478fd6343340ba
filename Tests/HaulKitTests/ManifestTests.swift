import Testing

@testable import HaulKit

@Suite struct ManifestTests {
    static let a = String(repeating: "a", count: 64)
    static let b = String(repeating: "b", count: 64)
    static let c = String(repeating: "c", count: 64)

    static func json(config: String = c, layers: String) -> [UInt8] {
        Array(
            """
            {"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",
             "config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"sha256:\(config)","size":10},
             "layers":[\(layers)]}
            """.utf8)
    }

    @Test func keepsRawBytesAndOrdersBlobsLayersThenConfig() throws {
        let bytes = Self.json(
            layers: """
                {"mediaType":"application/vnd.ollama.image.model","digest":"sha256:\(Self.a)","size":1000},
                {"mediaType":"application/vnd.ollama.image.license","digest":"sha256:\(Self.b)","size":20,"from":"x"}
                """)
        let m = try Manifest(bytes: bytes)
        #expect(m.raw == bytes)
        #expect(try m.blobs.map(\.digest.hex) == [Self.a, Self.b, Self.c])
        #expect(m.totalSize == 1030)
        #expect(m.digest == Digest(bytes: SHA256.hash(bytes)))
    }

    @Test func duplicateDigestsAreFetchedOnce() throws {
        let m = try Manifest(
            bytes: Self.json(
                config: Self.a,
                layers: """
                    {"mediaType":"x","digest":"sha256:\(Self.a)","size":10},
                    {"mediaType":"y","digest":"sha256:\(Self.a)","size":10}
                    """))
        #expect(try m.blobs.count == 1)
    }

    @Test func conflictingSizesForOneDigestAreRejected() throws {
        let m = try Manifest(
            bytes: Self.json(
                layers: """
                    {"mediaType":"x","digest":"sha256:\(Self.a)","size":10},
                    {"mediaType":"y","digest":"sha256:\(Self.a)","size":11}
                    """))
        #expect(throws: HaulError.self) { try m.blobs }
    }

    @Test(arguments: [
        ("not json", "malformed JSON"),
        ("{\"schemaVersion\":1,\"config\":{\"digest\":\"sha256:\(a)\",\"size\":1},\"layers\":[]}", "schemaVersion 1"),
        ("{\"schemaVersion\":2,\"layers\":[]}", "missing config"),
        ("{\"schemaVersion\":2,\"config\":{\"digest\":\"sha256:\(a)\",\"size\":-1},\"layers\":[]}", "out of range"),
        ("{\"schemaVersion\":2,\"config\":{\"digest\":\"sha256:../../x\",\"size\":1},\"layers\":[]}", "invalid digest"),
        ("{\"schemaVersion\":2,\"config\":{\"digest\":\"md5:\(a)\",\"size\":1},\"layers\":[]}", "invalid digest"),
        (
            "{\"schemaVersion\":2,\"config\":{\"digest\":\"sha256:\(a.uppercased())\",\"size\":1},\"layers\":[]}",
            "invalid digest"
        ),
        ("{\"schemaVersion\":2,\"config\":{\"digest\":\"sha256:\(a)\",\"size\":\"1\"},\"layers\":[]}", "wrong type"),
        (
            "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"config\":{\"digest\":\"sha256:\(a)\",\"size\":1},\"layers\":[]}",
            "unsupported mediaType"
        )
    ])
    func rejectsBadManifestsWithAReason(_ text: String, _ reason: String) {
        do {
            _ = try Manifest(bytes: Array(text.utf8))
            Issue.record("accepted: \(text)")
        } catch {
            #expect(error.description.hasPrefix("pull model manifest: invalid manifest: "))
            #expect(error.description.contains(reason), "\(error.description)")
        }
    }

    @Test func refusesOversizeManifests() {
        let big = [UInt8](repeating: 0x20, count: Manifest.maxBytes + 1)
        #expect(throws: HaulError.manifestInvalid("larger than \(Manifest.maxBytes) bytes")) {
            try Manifest(bytes: big)
        }
    }

    @Test func digestParsing() throws {
        let d = try Digest(parsing: "sha256:" + Self.a)
        #expect(d.fileName == "sha256-" + Self.a)
        #expect(d.short == String(repeating: "a", count: 12))
        for bad in [
            "sha256:" + Self.a.dropLast(), "sha256:" + Self.a + "0", "sha512:" + Self.a, "sha256-" + Self.a,
            "sha256:" + String(repeating: "g", count: 64), "sha256:/" + Self.a.dropFirst()
        ] {
            #expect(throws: HaulError.self) { try Digest(parsing: bad) }
        }
    }
}
