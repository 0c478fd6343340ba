import Foundation
import HaulTestSupport
import Testing

@testable import HaulKit

/// `haul export` and `haul import`: OCI image layouts (directory and tar)
/// that skopeo reads, brought back into a store with every blob verified;
/// a corrupt or hostile layout is refused by name and leaves nothing.
@Suite(.serialized) struct ExportImportTests {
    static let fixture: (dir: TempDir, a: TestModel, b: String) = {
        let dir = TempDir("haul-oci-fixture")
        let a = try! TestModel.make(
            root: dir.path, name: "library/alpha:latest", layers: ["5M", "1K"],
            texts: ["template={{ .Prompt }}"])
        try! FileManager.default.createDirectory(
            atPath: dir.sub("manifests/library/beta"), withIntermediateDirectories: true)
        let b = try! TestModel.copyTag(a, to: "library/beta:v2", root: dir.path)
        return (dir, a, b)
    }()

    /// A store holding both models, pulled from the test registry.
    static func pulledStore() async throws -> (TempDir, [String]) {
        let registry = try TestRegistry(root: fixture.dir.path, cdn: true)
        let models = TempDir("haul-models")
        let names = ["\(registry.host)/library/alpha:latest", "\(registry.host)/\(fixture.b)"]
        let r = try run(
            haulBinary, ["pull"] + names + ["--insecure", "-q"], environment: ["OLLAMA_MODELS": models.path])
        try #require(r.status == 0, "\(r.stderr)")
        return (models, names)
    }

    @Test func aDirectoryLayoutIsReadBySkopeoAndImportsIntoAFreshStore() async throws {
        let (models, names) = try await Self.pulledStore()
        let outDir = TempDir("haul-oci-out")
        let out = outDir.sub("layout")
        let export = try run(haulBinary, ["export"] + names + ["-o", out], environment: ["OLLAMA_MODELS": models.path])
        #expect(
            export.status == 0 && export.stdout.hasPrefix("exported 2 models (5 blobs"),
            "\(export.stdout)\(export.stderr)")
        let store = ModelStore(root: models.path)
        // Same filesystem: blobs are linked (or reflinked), not copied.
        let big = Self.fixture.a.layers.first { $0.size == 5 << 20 }!
        var st = stat()
        #expect(stat(out + "/blobs/sha256/" + big.digest.hex, &st) == 0 && (st.st_nlink >= 2 || st.st_blocks > 0))
        // Another OCI tool reads it: the manifest bytes are the registry's.
        for name in names {
            let parsed = try ModelName(parsing: name)
            let raw = try run("/usr/bin/skopeo", ["inspect", "--raw", "oci:\(out):\(parsed.displayShortest)"])
            #expect(raw.status == 0, "\(raw.stderr)")
            #expect(Array(raw.stdout.utf8) == (try store.manifest(for: parsed))?.raw, "\(name)")
        }
        let fresh = TempDir("haul-models")
        let imported = try run(haulBinary, ["import", out], environment: ["OLLAMA_MODELS": fresh.path])
        #expect(imported.status == 0, "\(imported.stderr)")
        #expect(Set(ModelStore(root: fresh.path).list().map(\.name.displayShortest)) == Set(names))
        let verify = try run(haulBinary, ["verify", "--all"], environment: ["OLLAMA_MODELS": fresh.path])
        #expect(
            verify.status == 0 && (verify.stdout + verify.stderr).contains("0 bad"), "\(verify.stdout)\(verify.stderr)")
        // Imported blobs are the store's own copies, not links into the layout.
        #expect(stat(ModelStore(root: fresh.path).blobPath(big.digest), &st) == 0 && st.st_nlink == 1)
    }

    @Test func aTarRoundTripsAndACorruptBlobInItIsRefusedByName() async throws {
        let (models, names) = try await Self.pulledStore()
        let outDir = TempDir("haul-oci-out")
        let tar = outDir.sub("models.tar")
        let exported = try run(haulBinary, ["export", names[0], "-o", tar], environment: ["OLLAMA_MODELS": models.path])
        #expect(exported.status == 0, "\(exported.stderr)")
        let listing = try run("/bin/tar", ["-tf", tar])
        #expect(listing.status == 0 && listing.stdout.contains("oci-layout") && listing.stdout.contains("index.json"))
        let fresh = TempDir("haul-models")
        let ok = try run(haulBinary, ["import", tar], environment: ["OLLAMA_MODELS": fresh.path])
        #expect(ok.status == 0 && ok.stdout.contains("imported \(names[0])"), "\(ok.stderr)")

        // One byte of the big blob flipped inside the archive.
        var bytes = try Data(contentsOf: URL(fileURLWithPath: tar))
        let big = Self.fixture.a.layers.first { $0.size == 5 << 20 }!
        let header = bytes.range(of: Data(("blobs/sha256/" + big.digest.hex).utf8))!.lowerBound
        bytes[header + 512 + 1000] ^= 0xFF
        try bytes.write(to: URL(fileURLWithPath: tar))
        let empty = TempDir("haul-models")
        let bad = try run(haulBinary, ["import", tar], environment: ["OLLAMA_MODELS": empty.path])
        #expect(bad.status == 1)
        #expect(
            bad.stderr.contains("blob \(big.digest) of \(names[0]) is corrupt: its bytes hash to sha256:"),
            "\(bad.stderr)")
        #expect(bad.stderr.contains("nothing was imported"))
        #expect(ModelStore(root: empty.path).list().isEmpty)
        #expect(!FileManager.default.fileExists(atPath: ModelStore(root: empty.path).blobPath(big.digest)))
        #expect(
            (try? FileManager.default.contentsOfDirectory(atPath: empty.sub(".haul")))?.filter {
                $0.hasPrefix("import-")
            } ?? [] == [],
            "no staging left behind")
    }

    /// A tag that is a manifest list travels as one: the list byte for byte
    /// (its digest is the tag's), each child the store has, their layers.
    /// A store Ollama ≥ 0.40 reads gets the list back; one that an older
    /// Ollama reads gets the child that runs; a child that was tampered
    /// with is refused by name and nothing is stored.
    @Test func aManifestListTravelsWithItsChildren() async throws {
        let f = ManifestListPullTests.fixture
        let registry = try TestRegistry(root: f.dir.path, cdn: false)
        let models = TempDir("haul-models")
        _ = try OllamaStore(models.path)
        let name = "\(registry.host)/library/tiny"
        let env = ["OLLAMA_MODELS": models.path]
        for extra in [[], ["--runner", "ggml"]] {
            let r = try run(haulBinary, ["pull", name, "--insecure", "-q"] + extra, environment: env)
            try #require(r.status == 0, "\(r.stderr)")
        }
        let listDigest = Digest(hashing: f.list)
        let outDir = TempDir("haul-oci-out")
        let out = outDir.sub("layout")
        let exported = try run(haulBinary, ["export", name, "-o", out], environment: env)
        #expect(exported.status == 0, "\(exported.stderr)")
        let index = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/index.json")))
                as? [String: Any])
        let entries = index["manifests"] as? [[String: Any]] ?? []
        #expect(
            entries.count == 1 && entries.first?["digest"] as? String == listDigest.description
                && entries.first?["mediaType"] as? String == ManifestListPullTests.listType, "\(entries)")
        let children = [f.llamacpp, f.ggml]
        for digest in [listDigest] + children.map({ Digest(hashing: $0.manifestBytes) })
            + children.flatMap({ $0.layers.map(\.digest) })
        {
            #expect(FileManager.default.fileExists(atPath: out + "/blobs/sha256/" + digest.hex), "\(digest)")
        }

        // Into a store today's Ollama reads: the list and both children.
        let fresh = TempDir("haul-models")
        let ollama = try OllamaStore(fresh.path)
        let imported = try run(haulBinary, ["import", out], environment: ["OLLAMA_MODELS": fresh.path])
        #expect(imported.status == 0, "\(imported.stderr)")
        #expect(
            try FileManager.default.destinationOfSymbolicLink(atPath: ollama.v2Path(name)) == "../../../../blobs/"
                + listDigest.fileName)
        let rows = ollama.store.list()
        #expect(
            Set(rows.map(\.runner)) == ["llamacpp", "ggml"] && rows.allSatisfy { $0.tagDigest == listDigest }, "\(rows)"
        )
        #expect(StoreCheck.problems(ollama.store).isEmpty)

        // Into a store only an Ollama before 0.40 reads: the child it runs.
        let legacy = TempDir("haul-models")
        let old = try OllamaStore(legacy.path, v2: false)
        let intoOld = try run(haulBinary, ["import", out], environment: ["OLLAMA_MODELS": legacy.path])
        #expect(intoOld.status == 0, "\(intoOld.stderr)")
        #expect(fileBytes(try old.legacyPath(name)).map(Array.init) == f.llamacpp.manifestBytes)
        let onlyGGML = Set(f.ggml.layers.map(\.digest)).subtracting(f.llamacpp.layers.map(\.digest))
        for digest in onlyGGML { #expect(!FileManager.default.fileExists(atPath: old.store.blobPath(digest))) }
        #expect(StoreCheck.problems(old.store).isEmpty)

        // A child changed in the layout: refused by name, nothing stored.
        let childFile = out + "/blobs/sha256/" + Digest(hashing: f.ggml.manifestBytes).hex
        var tampered = try Data(contentsOf: URL(fileURLWithPath: childFile))
        tampered[tampered.count - 2] = UInt8(ascii: " ")
        try FileManager.default.removeItem(atPath: childFile)
        try tampered.write(to: URL(fileURLWithPath: childFile))
        let empty = TempDir("haul-models")
        let bad = try run(haulBinary, ["import", out], environment: ["OLLAMA_MODELS": empty.path])
        #expect(bad.status == 1 && bad.stderr.contains("the ggml child of \(name):latest, sha256:"), "\(bad.stderr)")
        #expect(ModelStore(root: empty.path).list().isEmpty)
    }

    @Test func hostileAndWrongInputIsRefusedInOneLine() async throws {
        let (models, names) = try await Self.pulledStore()
        let env = ["OLLAMA_MODELS": models.path]
        let out = TempDir("haul-oci-out")
        let exists = try run(haulBinary, ["export", names[0], "-o", out.path], environment: env)
        #expect(
            exists.status == 1 && exists.stderr == "Error: \(out.path): exists already; choose a new path\n",
            "\(exists.stderr)")
        let unknown = try run(haulBinary, ["export", "nothere", "-o", out.sub("x")], environment: env)
        #expect(
            unknown.status == 1 && unknown.stderr.contains("not found")
                && !FileManager.default.fileExists(atPath: out.sub("x")))
        let notLayout = try run(haulBinary, ["import", out.path], environment: env)
        #expect(notLayout.status == 1 && notLayout.stderr.contains("not an OCI image layout"), "\(notLayout.stderr)")
        // A tar whose entry climbs out of the layout.
        let evil = out.sub("evil.tar")
        let made = try run(
            "/usr/bin/env",
            [
                "python3", "-c",
                """
                import io, tarfile
                with tarfile.open('\(evil)', 'w', format=tarfile.USTAR_FORMAT) as t:
                    data = b'pwned'
                    info = tarfile.TarInfo('../../escaped'); info.size = len(data); t.addfile(info, io.BytesIO(data))
                """
            ])
        try #require(made.status == 0, "\(made.stderr)")
        let climb = try run(haulBinary, ["import", evil], environment: env)
        #expect(climb.status == 1 && climb.stderr.contains("would leave the layout"), "\(climb.stderr)")
        #expect(
            !FileManager.default.fileExists(atPath: models.path + "/escaped")
                && !FileManager.default.fileExists(atPath: models.sub("../escaped")))
        // A size near Int64.max (base-256) must be refused, not overflow.
        let huge = out.sub("huge.tar")
        try Data(
            TarArchive.header(name: "oci-layout", size: .max - 100, directory: false)
                + [UInt8](repeating: 0, count: 1024)
        )
        .write(to: URL(fileURLWithPath: huge))
        let overflow = try run(haulBinary, ["import", huge], environment: env)
        #expect(
            overflow.status == 1 && overflow.stderr.contains("would leave the layout or the archive"),
            "\(overflow.stderr)")
    }

    /// `kill -9` during an import leaves its staging directory (copies of
    /// blobs); `haul partials` lists it, and the next import removes it,
    /// never a live import's.
    @Test func stagingOfAKilledImportIsListedThenRemovedByTheNextImport() async throws {
        let source = TempDir("haul-oci-big")
        _ = try TestModel.make(root: source.path, name: "library/big:latest", layers: ["160M", "1K"])
        let registry = try TestRegistry(root: source.path, cdn: false)
        defer { registry.stop() }
        let models = TempDir("haul-models")
        let name = "\(registry.host)/library/big:latest"
        let pulled = try run(
            haulBinary, ["pull", name, "--insecure", "-q"], environment: ["OLLAMA_MODELS": models.path])
        try #require(pulled.status == 0, "\(pulled.stderr)")
        let out = TempDir("haul-oci-out")
        let tar = out.sub("big.tar")
        let exported = try run(haulBinary, ["export", name, "-o", tar], environment: ["OLLAMA_MODELS": models.path])
        try #require(exported.status == 0, "\(exported.stderr)")

        let fresh = TempDir("haul-models")
        let haulDir = fresh.sub(".haul")
        func staging() -> [String] {
            ((try? FileManager.default.contentsOfDirectory(atPath: haulDir)) ?? []).filter { $0.hasPrefix("import-") }
        }
        // Killed once it has copied some of the blob into its staging.
        let logs = TempDir("haul-logs")
        let importer = try BackgroundProcess(["import", tar], models: fresh.path, logs: logs)
        let copying = try await waitUntil(timeout: 60) {
            staging().contains { FileSystem.allocatedBytes(under: haulDir + "/" + $0) > 8 << 20 }
        }
        importer.send(SIGKILL)
        importer.wait()
        try #require(copying, "the import never staged anything: \(importer.stderr)")
        let left = staging()
        try #require(left.count == 1)

        let listed = try run(haulBinary, ["partials"], environment: ["OLLAMA_MODELS": fresh.path])
        #expect(
            listed.status == 0 && listed.stdout.contains(left[0]) && listed.stdout.contains("interrupted import"),
            "\(listed.stdout)")

        let again = try run(haulBinary, ["import", tar], environment: ["OLLAMA_MODELS": fresh.path])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(staging() == [], "staging left: \(staging())")
        #expect(ModelStore(root: fresh.path).list().count == 1)
    }

    /// Another local user who can write the output's directory plants links
    /// under every name an export could use for its temporary files (the
    /// old names were `.NAME.haul-tmp-<pid>`): nothing is written through
    /// them, and the export still succeeds.
    @Test func plantedLinksBesideTheOutputAreNeverWrittenThrough() async throws {
        let (models, names) = try await Self.pulledStore()
        let env = ["OLLAMA_MODELS": models.path]
        let shared = TempDir("haul-shared-dir")
        let victim = TempDir("haul-victim")
        let victimFile = victim.sub("authorized_keys")
        try Data("mine\n".utf8).write(to: URL(fileURLWithPath: victimFile))
        // The next pids are the ones the export's process is likely to get.
        let last =
            Int(
                (try? String(contentsOfFile: "/proc/sys/kernel/ns_last_pid", encoding: .utf8))?
                    .trimmingCharacters(in: .whitespacesAndNewlines) ?? "") ?? 0
        for pid in (last + 1)...(last + 400) {
            try? FileManager.default.createSymbolicLink(
                atPath: shared.sub(".out.tar.haul-tmp-\(pid)"), withDestinationPath: victimFile)
            try? FileManager.default.createSymbolicLink(
                atPath: shared.sub(".out.haul-tmp-\(pid)"), withDestinationPath: victim.path)
        }
        let tar = try run(haulBinary, ["export", names[0], "-o", shared.sub("out.tar")], environment: env)
        #expect(tar.status == 0, "\(tar.stderr)")
        let dir = try run(haulBinary, ["export", names[0], "-o", shared.sub("out")], environment: env)
        #expect(dir.status == 0, "\(dir.stderr)")
        #expect(try String(contentsOfFile: victimFile, encoding: .utf8) == "mine\n")
        #expect(try FileManager.default.contentsOfDirectory(atPath: victim.path) == ["authorized_keys"])
        // What was exported is a real layout, owned by the exporter.
        let imported = try run(
            haulBinary, ["import", shared.sub("out.tar")], environment: ["OLLAMA_MODELS": TempDir("haul-models").path])
        #expect(imported.status == 0, "\(imported.stderr)")
        // A name that appears at the output meanwhile is not replaced.
        let taken = shared.sub("taken.tar")
        try FileManager.default.createSymbolicLink(atPath: taken, withDestinationPath: victimFile)
        let refused = try run(haulBinary, ["export", names[0], "-o", taken], environment: env)
        #expect(refused.status == 1 && refused.stderr.contains("exists already"), "\(refused.stderr)")
        #expect(try String(contentsOfFile: victimFile, encoding: .utf8) == "mine\n")
    }

    /// A layout directory whose blob is a link to /dev/zero or a FIFO: the
    /// import refuses it by name before reading a byte (a FIFO used to
    /// block it for good, /dev/zero to fill the staging area).
    @Test(.timeLimit(.minutes(1))) func onlyRegularFilesAreReadFromALayoutDirectory() async throws {
        let (models, names) = try await Self.pulledStore()
        let big = Self.fixture.a.layers.first { $0.size == 5 << 20 }!
        for (kind, make) in [
            (
                "symbolic link",
                { (path: String) in
                    try FileManager.default.createSymbolicLink(atPath: path, withDestinationPath: "/dev/zero")
                }
            ),
            (
                "regular file",
                { (path: String) in
                    _ = mkfifo(path, 0o600)
                }
            )
        ] as [(String, (String) throws -> Void)] {
            let out = TempDir("haul-oci-out")
            let layout = out.sub("layout")
            let export = try run(
                haulBinary, ["export", names[0], "-o", layout], environment: ["OLLAMA_MODELS": models.path])
            try #require(export.status == 0, "\(export.stderr)")
            let blob = layout + "/blobs/sha256/" + big.digest.hex
            try FileManager.default.removeItem(atPath: blob)
            try make(blob)
            let fresh = TempDir("haul-models")
            let refused = try run(haulBinary, ["import", layout], environment: ["OLLAMA_MODELS": fresh.path])
            #expect(
                refused.status == 1 && refused.stderr.contains(blob) && refused.stderr.contains(kind),
                "\(refused.stderr)")
            #expect(FileSystem.allocatedBytes(under: fresh.path) < 1 << 20, "nothing was copied")
            #expect(ModelStore(root: fresh.path).list().isEmpty)
        }
    }

    /// A hostile layout lists one 4 MiB manifest 4,000 times: the import
    /// stops at its budget of manifest bytes (64 MiB), having read a few
    /// of them, instead of reading 16 GiB and storing 4,000 names.
    @Test(.timeLimit(.minutes(1))) func oneManifestListedThousandsOfTimesIsRefusedEarly() throws {
        let out = TempDir("haul-oci-out")
        try FileManager.default.createDirectory(atPath: out.sub("blobs/sha256"), withIntermediateDirectories: true)
        let config = Array(#"{"model_format":"gguf"}"#.utf8)
        try Data(config).write(to: URL(fileURLWithPath: out.sub("blobs/sha256/" + Digest(hashing: config).hex)))
        let head =
            #"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":"#
            + #"{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"\#(Digest(hashing: config))","size":\#(config.count)},"#
            + #""layers":[]}"#
        let manifest = Array(head.utf8) + [UInt8](repeating: UInt8(ascii: " "), count: (4 << 20) - head.utf8.count - 16)
        let digest = Digest(hashing: manifest)
        try Data(manifest).write(to: URL(fileURLWithPath: out.sub("blobs/sha256/" + digest.hex)))
        let entries = (0..<4000).map {
            #"{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"\#(digest)","size":\#(manifest.count),"#
                + #""annotations":{"org.opencontainers.image.ref.name":"m\#($0)"}}"#
        }
        try Data((#"{"schemaVersion":2,"manifests":["# + entries.joined(separator: ",") + "]}").utf8)
            .write(to: URL(fileURLWithPath: out.sub("index.json")))
        try Data(#"{"imageLayoutVersion":"1.0.0"}"#.utf8).write(to: URL(fileURLWithPath: out.sub("oci-layout")))
        let fresh = TempDir("haul-models")
        let refused = try run(haulBinary, ["import", out.path], environment: ["OLLAMA_MODELS": fresh.path])
        #expect(
            refused.status == 1 && refused.stderr.contains("holds more than 64 MiB of manifests"), "\(refused.stderr)")
        #expect(ModelStore(root: fresh.path).list().isEmpty)
    }
}
