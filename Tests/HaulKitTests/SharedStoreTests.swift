import Foundation
import HaulTestSupport
import Testing

@testable import HaulKit

/// A models directory shared with Ollama ≥ 0.40: `manifests-v2/` links to
/// manifest blobs, manifest lists, `%3A` hosts, both spellings of the
/// public registry, dangling and hostile links. What Haul's store sees in
/// it, what it writes, and that no blob either tree names disappears.
@Suite struct SharedStoreTests {
    static let model = "application/vnd.ollama.image.model"
    static let template = "application/vnd.ollama.image.template"

    /// The store of the issue: `a` legacy, `b` a v2 entry sharing `a`'s
    /// weights, `c` a v2 entry to a list with a local llama.cpp child and
    /// an absent ggml one.
    struct Shared {
        let ollama: OllamaStore
        let a: (bytes: [UInt8], layers: [OllamaStore.Layer0])
        let b: (bytes: [UInt8], layers: [OllamaStore.Layer0])
        let child: (bytes: [UInt8], layers: [OllamaStore.Layer0])
        let absent: [UInt8]
        let list: [UInt8]

        init(_ dir: TempDir) throws {
            ollama = try OllamaStore(dir.path)
            a = try ollama.image([(model, "shared weights"), (template, "a template")])
            try ollama.legacy("a", a.bytes)
            b = try ollama.image([(model, "shared weights"), (template, "b template")], runner: "ggml")
            try ollama.linkV2("b", b.bytes)
            child = try ollama.image([(model, "c weights, converted")])
            absent = try ollama.image([(model, "c weights, ggml")]).bytes
            list = try ollama.list([
                .reference(manifest: child.bytes, runner: "llamacpp", stored: true),
                .reference(manifest: absent, runner: "ggml", stored: false)
            ])
            // The ggml child's layers are stored, its manifest is not: a
            // child not pulled.
            try ollama.linkV2("c", list)
        }
    }

    @Test func everyModelOfBothTreesIsListedAndAListIsARowPerChildPresent() throws {
        let dir = TempDir()
        let s = try Shared(dir)
        let rows = s.ollama.store.list()
        #expect(Set(rows.map(\.name.displayShortest)) == ["a:latest", "b:latest", "c:latest"])
        let c = try #require(rows.first { $0.name.model == "c" })
        #expect(rows.filter { $0.name.model == "c" }.count == 1, "the absent ggml child is no row")
        #expect(c.id == Digest(hashing: s.child.bytes), "a list row's digest is its child's, as Ollama shows it")
        #expect(c.tagDigest == Digest(hashing: s.list))
        #expect(c.runner == "llamacpp")
        #expect(c.manifest.raw == s.child.bytes)
        #expect(rows.first { $0.name.model == "b" }?.runner == "ggml")
        #expect(try s.ollama.store.manifest(for: ModelName(parsing: "c"))?.raw == s.child.bytes)
        #expect(try s.ollama.store.storedManifest(for: ModelName(parsing: "c"))?.raw == s.list)
        #expect(s.ollama.store.unreadableManifests().isEmpty)
    }

    @Test func removingALegacyModelKeepsTheLayerAV2ModelStillUses() throws {
        let dir = TempDir()
        let s = try Shared(dir)
        let store = s.ollama.store
        try store.remove(ModelName(parsing: "a"))
        // The issue's data loss: the shared weights must survive.
        for layer in s.b.layers { #expect(s.ollama.intact(layer.digest), "\(layer.digest.short) of b") }
        #expect(!FileManager.default.fileExists(atPath: store.blobPath(s.a.layers[1].digest)), "a's own template goes")
        #expect(s.ollama.intact(Digest(hashing: s.b.bytes)), "b's manifest blob stays")
        #expect(Set(store.list().map(\.name.model)) == ["b", "c"])
    }

    @Test func removingAListTakesItsBlobsAndItsChildrenButNothingShared() throws {
        let dir = TempDir()
        let s = try Shared(dir)
        let store = s.ollama.store
        // d: a legacy copy of c's child, so its layers are shared.
        try s.ollama.legacy("d", s.child.bytes)
        let removal = try store.remove(ModelName(parsing: "c"))
        #expect(removal.unreadable.isEmpty)
        #expect(!FileManager.default.fileExists(atPath: store.blobPath(Digest(hashing: s.list))), "the list blob goes")
        #expect(s.ollama.intact(Digest(hashing: s.child.bytes)), "d names the child blob (its bytes' digest)")
        for layer in s.child.layers { #expect(s.ollama.intact(layer.digest)) }
        #expect(!FileManager.default.fileExists(atPath: try s.ollama.v2Path("c")))
        try store.remove(ModelName(parsing: "d"))
        // Its weights go; the config (the last layer) is the same blob as
        // a's and b's, and stays.
        for layer in s.child.layers.dropLast() {
            #expect(!FileManager.default.fileExists(atPath: store.blobPath(layer.digest)))
        }
        #expect(s.ollama.intact(s.child.layers.last!.digest))
        #expect(!FileManager.default.fileExists(atPath: store.blobPath(Digest(hashing: s.child.bytes))))
    }

    /// A list with an inline child (named by Ollama's encoding of it) and a
    /// reference child; a legacy anchor as Ollama's later releases write
    /// one (the runnable manifest plus the list and child blobs as layers).
    @Test func inlineChildrenAndLegacyAnchorsAreReadAndKept() throws {
        let dir = TempDir()
        let ollama = try OllamaStore(dir.path)
        let inline = try ollama.image([(Self.model, "inline weights")])
        let referenced = try ollama.image([(Self.model, "referenced weights")])
        let list = try ollama.list([
            .inline(manifest: inline.bytes, runner: "ggml"),
            .reference(manifest: referenced.bytes, runner: "llamacpp", stored: true)
        ])
        try ollama.linkV2("both", list)
        let rows = ollama.store.list()
        #expect(Set(rows.map(\.runner)) == ["ggml", "llamacpp"], "a row per child, the inline one included")
        let inlineRow = try #require(rows.first { $0.runner == "ggml" })
        #expect(inlineRow.manifest.layers.map(\.digest) == inline.layers.dropLast().map(\.digest))
        #expect(inlineRow.id == (try ManifestList(bytes: list)).children[0].digest)

        // The anchor: what an Ollama before 0.40 reads, and all that is left
        // after its garbage collection deleted the v2 entry's blobs' names.
        var anchor = try JSONSerialization.jsonObject(with: Data(referenced.bytes)) as! [String: Any]
        var layers = anchor["layers"] as! [[String: Any]]
        layers.append([
            "mediaType": OllamaStore.dockerManifest, "digest": Digest(hashing: list).description, "size": list.count
        ])
        layers.append([
            "mediaType": OllamaStore.dockerManifest, "digest": Digest(hashing: referenced.bytes).description,
            "size": referenced.bytes.count
        ])
        anchor["layers"] = layers
        try ollama.legacy("both", Array(try JSONSerialization.data(withJSONObject: anchor)))
        try FileManager.default.removeItem(atPath: try ollama.v2Path("both"))
        // Another model sharing nothing is removed: the anchor keeps the
        // list, the child blob and the weights.
        let other = try ollama.image([(Self.model, "other")])
        try ollama.legacy("other", other.bytes)
        try ollama.store.remove(ModelName(parsing: "other"))
        for digest in [Digest(hashing: list), Digest(hashing: referenced.bytes)] + referenced.layers.map(\.digest) {
            #expect(ollama.intact(digest), "\(digest.short)")
        }
        // The name still resolves, through the legacy anchor.
        #expect(
            try ollama.store.manifest(for: ModelName(parsing: "both"))?.layers.contains {
                $0.digest == referenced.layers[0].digest
            } == true)
    }

    @Test func hostsAreSpelledAsOllamaSpellsThem() throws {
        let dir = TempDir()
        let ollama = try OllamaStore(dir.path)
        let one = try ollama.image([(Self.model, "one")])
        let path = try ollama.linkV2("myreg:5000/team/one:v1", one.bytes)
        #expect(path.hasSuffix("/manifests-v2/myreg%3A5000/team/one/v1"))
        let two = try ollama.image([(Self.model, "two")])
        try ollama.legacy("two", two.bytes, host: "ollama.com")
        let three = try ollama.image([(Self.model, "three")])
        try ollama.linkV2("three", three.bytes)
        #expect(try ollama.v2Path("three").contains("/manifests-v2/ollama.com/library/three/latest"))
        let names = Set(ollama.store.list().map(\.name.displayShortest))
        #expect(names == ["myreg:5000/team/one:v1", "two:latest", "three:latest"])
        // Any spelling of the public registry finds them.
        for spelling in ["ollama.com/library/two", "registry.ollama.ai/library/three", "Ollama.com/library/three"] {
            #expect(try ollama.store.manifest(for: ModelName(parsing: spelling)) != nil, "\(spelling)")
        }
        #expect(try ollama.store.manifest(for: ModelName(parsing: "myreg:5000/team/one:v1"))?.raw == one.bytes)
    }

    @Test func hardLinkedAndCopiedEntriesCount() throws {
        let dir = TempDir()
        let ollama = try OllamaStore(dir.path)
        let one = try ollama.image([(Self.model, "one")])
        let two = try ollama.image([(Self.model, "two")])
        try ollama.linkV2("one", one.bytes, as: .hardLink)
        try ollama.linkV2("two", two.bytes, as: .copy)
        #expect(Set(ollama.store.list().map(\.name.model)) == ["one", "two"])
        try ollama.store.remove(ModelName(parsing: "one"))
        for layer in two.layers { #expect(ollama.intact(layer.digest)) }
    }

    @Test func aDanglingV2LinkFallsBackToTheLegacyFileOrIsReported() throws {
        let dir = TempDir()
        let ollama = try OllamaStore(dir.path)
        let old = try ollama.image([(Self.model, "old")])
        try ollama.legacy("m", old.bytes)
        try ollama.rawLink("m", to: "../../../../blobs/sha256-" + String(repeating: "e", count: 64))
        #expect(try ollama.store.manifest(for: ModelName(parsing: "m"))?.raw == old.bytes)
        #expect(ollama.store.list().map(\.name.model) == ["m"])

        let path = try ollama.rawLink("gone", to: "../../../../blobs/sha256-" + String(repeating: "f", count: 64))
        let unreadable = ollama.store.unreadableManifests()
        #expect(unreadable.map(\.path) == [path])
        #expect(unreadable.first?.problem.contains("missing blob") == true)
        // It can be removed by name.
        try ollama.store.remove(ModelName(parsing: "gone"))
        #expect(!FileManager.default.fileExists(atPath: path) && ollama.store.unreadableManifests().isEmpty)
    }

    /// Another local user plants links; nothing outside the store is read.
    @Test func linksThatLeaveTheStoreOrLieAreRefusedByName() throws {
        let dir = TempDir()
        let ollama = try OllamaStore(dir.path)
        let outside = TempDir()
        // A file outside the store named for its own digest: a store's
        // name, another store's bytes.
        let secret = try ollama.image([(Self.model, "secret")]).bytes
        let foreign = outside.path + "/sha256-" + Digest(hashing: secret).hex
        try Data(secret).write(to: URL(fileURLWithPath: foreign))
        let away = try ollama.rawLink("away", to: foreign)
        // A link to this store's blob whose bytes were changed.
        let real = try ollama.image([(Self.model, "real")]).bytes
        let changed = try ollama.linkV2("changed", real)
        try Data(real + Array(" ".utf8)).write(to: URL(fileURLWithPath: ollama.store.blobPath(Digest(hashing: real))))
        // A link to something that is no blob at all.
        let passwd = try ollama.rawLink("passwd", to: "/etc/passwd")
        // A legacy tree reached through a directory link to outside.
        try FileManager.default.createDirectory(atPath: outside.path + "/ns/model", withIntermediateDirectories: true)
        try Data(secret).write(to: URL(fileURLWithPath: outside.path + "/ns/model/latest"))
        try FileManager.default.createSymbolicLink(
            atPath: dir.path + "/manifests/evil.example", withDestinationPath: outside.path)
        let escaped = dir.path + "/manifests/evil.example/ns/model/latest"

        #expect(ollama.store.list().isEmpty)
        let problems = Dictionary(
            uniqueKeysWithValues: ollama.store.unreadableManifests().map { ($0.path, $0.problem) })
        #expect(problems[away]?.contains("not to \(ollama.store.blobsDirectory)") == true, "\(problems)")
        #expect(problems[changed]?.contains("do not hash") == true, "\(problems)")
        #expect(problems[passwd]?.contains("not a blob") == true, "\(problems)")
        #expect(problems[escaped]?.contains("outside") == true, "\(problems)")
        #expect(throws: HaulError.self) { try ollama.store.manifest(for: ModelName(parsing: "away")) }
    }

    /// A manifest that no longer hashes to its name, or that Haul cannot
    /// decode, still keeps every blob it names.
    @Test func aDamagedManifestStillProtectsWhatItNames() throws {
        let dir = TempDir()
        let ollama = try OllamaStore(dir.path)
        let shared = try ollama.image([(Self.model, "shared")])
        try ollama.legacy("mine", shared.bytes)
        let theirs = try ollama.image([(Self.model, "shared"), (Self.template, "t")])
        let path = try ollama.linkV2("theirs", theirs.bytes)
        try Data(theirs.bytes + Array("\n".utf8)).write(
            to: URL(fileURLWithPath: ollama.store.blobPath(Digest(hashing: theirs.bytes))))
        let odd = Array(#"{"schemaVersion":3,"weights":"sha256-\#(shared.layers[0].digest.hex)"}"#.utf8)
        try ollama.legacy("odd", odd)
        let removal = try ollama.store.remove(ModelName(parsing: "mine"))
        #expect(ollama.intact(shared.layers[0].digest), "named by the damaged v2 entry and the odd file")
        #expect(removal.unreadable.contains { $0.path == path })
        #expect(ModelStore.sweepNotice(removal.unreadable[0], count: removal.unreadable.count).contains(path))
    }

    /// A list that names 300 children (more than a list may hold) keeps
    /// every one, but a removal reads only 256 of them for what they name:
    /// one hostile list cannot make each removal read the whole store.
    @Test func aHostileListBoundsWhatARemovalReads() throws {
        let dir = TempDir()
        let ollama = try OllamaStore(dir.path)
        var children: [Digest] = []
        var layers: [Digest] = []
        for i in 0..<300 {
            let layer = try ollama.blob(Array("layer \(i)".utf8)).digest
            let child = try ollama.blob(Array(#"{"layers":[{"digest":"\#(layer)"}]}"#.utf8)).digest
            children.append(child)
            layers.append(layer)
        }
        let entries = children.map { #"{"digest":"\#($0)","runner":"ggml"}"# }.joined(separator: ",")
        let list = Array(
            #"{"schemaVersion":2,"mediaType":"application/vnd.ollama.manifest.list.v2+json","manifests":[\#(entries)]}"#
                .utf8)
        let path = try ollama.linkV2("many", list)
        let kept = ollama.store.retained(byEntryAt: path, root: .v2).digests
        #expect(Set(children).isSubset(of: kept), "every child it names is kept")
        #expect(Set(layers).intersection(kept).count == ManifestList.maxChildren)
    }

    @Test func pruningNeverTakesABlobYoungerThanAnHour() throws {
        let dir = TempDir()
        let ollama = try OllamaStore(dir.path)
        let young = try ollama.blob(Array("young".utf8)).digest
        let old = try ollama.blob(Array("old".utf8)).digest
        let past = Date().addingTimeInterval(-2 * 3600)
        try FileManager.default.setAttributes([.modificationDate: past], ofItemAtPath: ollama.store.blobPath(old))
        let removal = try ollama.store.removeUnreferencedBlobs([young, old], grace: ModelStore.pruneGracePeriod)
        #expect(removal.removed == [old] && removal.young == [young])
        #expect(ollama.intact(young))
    }

    @Test func shadowTagsAreRootsButNoModels() throws {
        let dir = TempDir()
        let ollama = try OllamaStore(dir.path)
        let converted = try ollama.image([(Self.model, "converted")])
        try ollama.legacy("llamacpp:" + Digest(hashing: converted.bytes).hex, converted.bytes)
        #expect(ollama.store.list().isEmpty)
        try ollama.legacy("other", converted.bytes)
        try ollama.store.remove(ModelName(parsing: "other"))
        for layer in converted.layers { #expect(ollama.intact(layer.digest)) }
    }

    @Test func aV2StoreGetsALinkToTheManifestBlobAndALegacyCopy() throws {
        let dir = TempDir()
        let ollama = try OllamaStore(dir.path)
        let store = ollama.store
        #expect(store.effectiveLayout == .v2)
        let first = try ollama.image([(Self.model, "first")])
        // An older version under the other public spelling must not linger.
        try ollama.legacy("m", Array("stale".utf8), host: "ollama.com")
        try store.writeManifest(raw: first.bytes, for: ModelName(parsing: "m"))
        let entry = try ollama.v2Path("m")
        #expect(
            try FileManager.default.destinationOfSymbolicLink(atPath: entry) == "../../../../blobs/sha256-"
                + Digest(hashing: first.bytes).hex)
        #expect(ollama.intact(Digest(hashing: first.bytes)))
        #expect(
            fileBytes(try ollama.legacyPath("m")).map(Array.init) == first.bytes,
            "the legacy anchor is the same manifest")
        #expect(!FileManager.default.fileExists(atPath: try ollama.legacyPath("m", host: "ollama.com")))
        #expect(try store.storedManifest(for: ModelName(parsing: "m"))?.root == .v2)
        // Nothing but entries in the trees: no temporary file anywhere.
        #expect(listFiles(dir.path + "/manifests-v2") == ["ollama.com/library/m/latest"])
        #expect(listFiles(dir.path + "/manifests") == ["registry.ollama.ai/library/m/latest"])
        #expect(listFiles(dir.path + "/.haul/tmp").isEmpty)

        // A list: the link names the list blob, the anchor the child that
        // runs here with the list and child blobs as extra layers.
        let child = try ollama.image([(Self.model, "child")])
        let list = try ollama.list([.reference(manifest: child.bytes, runner: "llamacpp", stored: true)])
        try store.writeManifest(raw: list, for: ModelName(parsing: "m"))
        #expect(try store.storedManifest(for: ModelName(parsing: "m"))?.raw == list)
        let anchor = try Manifest(bytes: Array(#require(fileBytes(try ollama.legacyPath("m")))))
        #expect(
            Set(anchor.layers.map(\.digest))
                == Set(child.layers.dropLast().map(\.digest) + [Digest(hashing: list), Digest(hashing: child.bytes)]))

        // Forced v1: the legacy file, and no v2 entry left to shadow it.
        try store.with(layout: .v1).writeManifest(raw: first.bytes, for: ModelName(parsing: "m"))
        #expect(!FileManager.default.fileExists(atPath: entry))
        #expect(try store.storedManifest(for: ModelName(parsing: "m"))?.root == .legacy)
    }

    /// What a write killed mid-way left in `.haul/tmp` goes once it is an
    /// hour old; a younger one may be another process's write in flight.
    @Test func writesSweepOldLeftoversOfKilledWrites() throws {
        let dir = TempDir()
        let ollama = try OllamaStore(dir.path)
        let tmp = dir.path + "/.haul/tmp"
        try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
        for name in ["entry-old", "entry-young"] {
            FileManager.default.createFile(atPath: tmp + "/" + name, contents: Data("x".utf8))
        }
        try FileManager.default.setAttributes(
            [.modificationDate: Date().addingTimeInterval(-2 * 3600)], ofItemAtPath: tmp + "/entry-old")
        let one = try ollama.image([(Self.model, "one")])
        try ollama.store.writeManifest(raw: one.bytes, for: ModelName(parsing: "one"))
        #expect(FileSystem.listDirectory(tmp) == ["entry-young"])
    }

    @Test func aStoreWithoutV2GetsLegacyFilesAndAutoIsDecidedByTheDirectory() throws {
        let dir = TempDir()
        let ollama = try OllamaStore(dir.path, v2: false)
        #expect(ollama.store.effectiveLayout == .v1)
        let one = try ollama.image([(Self.model, "one")])
        try ollama.store.writeManifest(raw: one.bytes, for: ModelName(parsing: "one"))
        #expect(!FileManager.default.fileExists(atPath: dir.path + "/manifests-v2"))
        #expect(fileBytes(try ollama.legacyPath("one")).map(Array.init) == one.bytes)
        #expect(ollama.store.with(layout: .v2).effectiveLayout == .v2)
        #expect(ModelStore.fromEnvironment(["OLLAMA_MODELS": dir.path, "HAUL_STORE_LAYOUT": "v2"]).layout == .v2)
    }

    @Test func aCopyOfAListIsAList() async throws {
        let dir = TempDir()
        let s = try Shared(dir)
        let haul = Haul(store: s.ollama.store)
        try await haul.copy(ModelName(parsing: "c"), to: ModelName(parsing: "team/c-copy:v1"))
        #expect(try s.ollama.store.storedManifest(for: ModelName(parsing: "team/c-copy:v1"))?.raw == s.list)
        try s.ollama.store.remove(ModelName(parsing: "c"))
        #expect(s.ollama.intact(Digest(hashing: s.list)) && s.ollama.intact(Digest(hashing: s.child.bytes)))
    }

    @Test func listsAreReadAsOllamaReadsThem() throws {
        let child = Digest(hashing: Array("x".utf8))
        func list(_ children: String) -> [UInt8] {
            Array(
                #"{"schemaVersion":2,"mediaType":"application/vnd.ollama.manifest.list.v2+json","manifests":[\#(children)]}"#
                    .utf8)
        }
        // Digests in Ollama's spellings, runners in any case.
        let parsed = try ManifestList(
            bytes: list(
                #"{"mediaType":"\#(OllamaStore.dockerManifest)","digest":"sha256-\#(child.hex.uppercased())","runner":" LlamaCpp "}"#
            ))
        #expect(parsed.children.map(\.digest) == [child] && parsed.children[0].runner == "llamacpp")
        #expect(throws: HaulError.self) {
            try ManifestList(
                bytes: list(#"{"mediaType":"application/vnd.ollama.manifest.list.v2+json","digest":"\#(child)"}"#))
        }
        #expect(throws: HaulError.self) { try ManifestList(bytes: list(#"{"digest":"sha256:1234"}"#)) }
        // The algorithm's name is lower case in Ollama's pattern.
        #expect(throws: HaulError.self) { try ManifestList(bytes: list(#"{"digest":"SHA256:\#(child.hex)"}"#)) }
        // Per runner in order, the first child of that runner; a runner
        // whose first child is absent gives way to the next runner.
        let a = Digest(hashing: Array("a".utf8))
        let b = Digest(hashing: Array("b".utf8))
        let c = Digest(hashing: Array("c".utf8))
        let three = try ManifestList(
            bytes: list(
                [
                    #"{"digest":"\#(a)","runner":"mlx"}"#, #"{"digest":"\#(b)","runner":"ggml"}"#,
                    #"{"digest":"\#(c)","runner":"llamacpp"}"#
                ].joined(separator: ",")))
        #expect(three.select(preferences: ["llamacpp", "ggml", "mlx"]) { _ in true }?.digest == c)
        #expect(three.select(preferences: ["llamacpp", "ggml", "mlx"]) { $0.digest != c }?.digest == b)
        #expect(three.select(preferences: ["mlx"]) { $0.digest != a } == nil)
        #expect(
            Runner.normalize("llama.cpp") == "llamacpp" && Runner.normalize("MLXRunner") == "mlx"
                && Runner.normalize("cuda") == nil)
    }

    /// A list naming one child 256 times (and another twice, under two
    /// runners) keeps each distinct child once, where it first appears:
    /// selection is Ollama's (first child per runner), the bytes and so
    /// the tag's digest are as sent, and a listing reads the child once.
    @Test func aListNamingOneChildManyTimesKeepsItOnce() throws {
        let dir = TempDir("haul-dup-list")
        let ollama = try OllamaStore(dir.path)
        let child = try ollama.image([(Self.model, "weights")], runner: "llamacpp")
        let other = try ollama.image([(Self.model, "other weights")])
        var entries = [OllamaStore.Child](
            repeating: .reference(manifest: child.bytes, runner: "llamacpp", stored: true), count: 255)
        entries.append(.reference(manifest: other.bytes, runner: "ggml", stored: true))
        let bytes = try ollama.list(entries)
        let list = try ManifestList(bytes: bytes)
        #expect(list.children.map(\.digest) == [Digest(hashing: child.bytes), Digest(hashing: other.bytes)])
        #expect(list.raw == bytes && list.digest == Digest(hashing: bytes))
        #expect(list.select(preferences: ["ggml"]) { _ in true }?.digest == Digest(hashing: other.bytes))
        // The same child under two runners is two entries (each runner selects it).
        let three: [OllamaStore.Child] = [
            .reference(manifest: child.bytes, runner: "llamacpp", stored: true),
            .reference(manifest: child.bytes, runner: "ggml", stored: true),
            .reference(manifest: child.bytes, runner: "llamacpp", stored: true)
        ]
        let twoRunners = try ManifestList(bytes: try ollama.list(three))
        #expect(twoRunners.children.map(\.runner) == ["llamacpp", "ggml"])
        try ollama.linkV2("dup", bytes)
        let rows = ollama.store.list()
        #expect(rows.count == 2, "one row per distinct child present: \(rows.map(\.id))")
    }

    /// Waits until `path`'s change time is two seconds old (no call sets a
    /// change time back).
    private func setOld(_ path: String) throws {
        var st = stat()
        guard stat(path, &st) == 0 else { throw TestFailure("stat \(path)") }
        while Int(Date().timeIntervalSince1970) - Int(st.st_ctim.tv_sec) < 2 { usleep(100_000) }
    }

    /// A manifest read once is not read again while its file is the same
    /// file (device, inode, size, times); a file rewritten in place is.
    @Test func aManifestFileIsReadOncePerIdentity() throws {
        let dir = TempDir("haul-manifest-cache")
        let ollama = try OllamaStore(dir.path)
        let image = try ollama.image([(Self.model, "weights")])
        let path = try ollama.legacy("cached", image.bytes)
        let cache = ManifestCache(limit: 1 << 20)
        var reads = 0
        func entry() throws -> ManifestCache.Entry {
            let fd = try FileDescriptor.open(path, O_RDONLY)
            return try cache.entry(try fd.status()) { () throws(HaulError) in
                reads += 1
                return try fd.readAll(limit: Manifest.maxBytes)
            }
        }
        // A file changed within the last second or two is read every time
        // (coarse timestamps could hide a second write); then it is kept.
        #expect(try entry().digest == Digest(hashing: image.bytes))
        #expect(reads == 1)
        try setOld(path)
        _ = try entry()
        _ = try entry()
        #expect(reads == 2, "kept once it is old enough")
        // Rewritten in place with other bytes of the same length: read anew.
        var changed = image.bytes
        changed[changed.count - 2] = UInt8(ascii: " ")
        try Data(changed).write(to: URL(fileURLWithPath: path))
        try setOld(path)
        #expect(try entry().digest == Digest(hashing: changed))
        #expect(reads == 3)
        // The bytes held stay within the limit: the oldest entries go.
        let small = ManifestCache(limit: 1500)
        let paths = (0..<20).map { dir.sub("m\($0)") }
        for p in paths { try Data(image.bytes).write(to: URL(fileURLWithPath: p)) }
        try setOld(paths[19])
        var most = 0
        for p in paths {
            let fd = try FileDescriptor.open(p, O_RDONLY)
            _ = try small.entry(try fd.status()) { () throws(HaulError) in try fd.readAll(limit: Manifest.maxBytes) }
            #expect(small.heldBytes <= 1500)
            most = max(most, small.heldBytes)
        }
        #expect(most > 0 && image.bytes.count + 256 <= 1500, "entries were kept, then evicted")
    }

    /// An inline child is named by the SHA-256 of Go's encoding of it
    /// (Ollama's `ChildManifestDigest`): field order, omitted empties, a
    /// nil slice as null and HTML-safe escapes, as Go 1.22+ writes them.
    @Test func anInlineChildIsNamedAsOllamaNamesIt() throws {
        let config = "sha256:" + String(repeating: "a", count: 64)
        let layer = "sha256:" + String(repeating: "b", count: 64)
        let wire =
            #"{"schemaVersion":2,"mediaType":"application/vnd.ollama.manifest.list.v2+json","manifests":[{"runner":"ggml","layers":[{"size":5,"name":"a<b>&\u2028\b","digest":"\#(layer)","mediaType":"application/vnd.ollama.image.model"}],"config":{"digest":"\#(config)","size":2,"mediaType":"application/vnd.docker.container.image.v1+json"},"mediaType":"application/vnd.docker.distribution.manifest.v2+json","schemaVersion":2}]}"#
        let expected =
            #"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"\#(config)","size":2},"layers":[{"mediaType":"application/vnd.ollama.image.model","digest":"\#(layer)","size":5,"name":"a\u003cb\u003e\u0026\u2028\b"}],"runner":"ggml"}"#
        let list = try ManifestList(bytes: Array(wire.utf8))
        #expect(list.children[0].digest == Digest(hashing: Array(expected.utf8)))
        #expect(list.children[0].inline?.layers.map(\.digest.description) == [layer])
        #expect(
            GoManifestJSON.inlineChild(
                schemaVersion: 0, mediaType: "", config: nil, layers: nil, runner: "", format: "")
                == Array(
                    #"{"schemaVersion":0,"mediaType":"","config":{"mediaType":"","digest":"","size":0},"layers":null}"#
                        .utf8))
    }
}
