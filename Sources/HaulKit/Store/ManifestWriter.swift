import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Writing a named manifest so that the Ollama that shares the store sees
/// it, atomically: every entry is made under `.haul/tmp/` and renamed into
/// its tree, so a crash at any point leaves the old entry or the new one,
/// never a half-written file, a dangling link, or a stray temporary file
/// in a tree (where Ollama would list it as a model, or skip its garbage
/// collection over the name it cannot parse).
extension ModelStore {
    /// Where entries are made before they are renamed into a tree (same
    /// filesystem, out of Ollama's sight).
    var temporaryDirectory: String { root + "/.haul/tmp" }

    /// Stores the manifest bytes atomically (after every blob is verified),
    /// under the name already stored if one differs only in case.
    public func writeManifest(_ manifest: Manifest, for name: ModelName) throws(HaulError) {
        try writeManifest(raw: manifest.raw, for: name)
    }

    /// Stores manifest (or manifest list) bytes under `name` in the
    /// layout `effectiveLayout` says:
    ///
    /// - `v1`: the legacy file. A v2 entry of the name is removed, or
    ///   Ollama ≥ 0.40 would go on reading it and never see this version.
    /// - `v2`: the bytes as a blob, the v2 entry a relative link to it (a
    ///   hard link, then a copy, where links cannot be made), as Ollama's
    ///   `writeManifestData` and `linkManifest` do; then a legacy file, so
    ///   an Ollama before 0.40 (which reads, and keeps blobs for, only
    ///   `manifests/`) neither loses the model nor deletes its blobs.
    public func writeManifest(raw: [UInt8], for name: ModelName) throws(HaulError) {
        let target = (existingName(name) ?? name).storeIdentity
        try FileSystem.makeDirectories(temporaryDirectory)
        sweepTemporaryEntries()
        switch effectiveLayout {
        case .v1, .auto:
            try writeLegacy(raw, for: target)
            try removeEntry(v2Path(target), below: manifestsV2Directory)
        case .v2:
            let digest = try writeManifestBlob(raw)
            try link(v2Path(target), to: digest, bytes: raw)
            if let anchor = legacyAnchor(for: raw) {
                try writeLegacy(anchor, for: target)
            } else {
                for path in legacyPaths(target) { try removeEntry(path, below: manifestsDirectory) }
            }
        }
    }

    /// The legacy file written beside a v2 entry: the manifest itself; for
    /// a list, the child that runs here with the list and child blobs
    /// appended as layers, so an Ollama that counts only legacy layers
    /// keeps them too (the shape Ollama's later `WriteLegacyAnchor` is
    /// described to write; its exact bytes could not be read, and no
    /// reader depends on them). Nil for a list with no child present.
    func legacyAnchor(for raw: [UInt8]) -> [UInt8]? {
        guard ManifestList.isList(raw) else { return raw }
        guard let list = try? ManifestList(bytes: raw),
            let chosen = list.select(isLocal: { (try? childManifest($0)) != nil }),
            let child = try? childManifest(chosen),
            var object = try? JSONSerialization.jsonObject(with: Data(child.raw)) as? [String: Any]
        else { return nil }
        var layers = object["layers"] as? [Any] ?? []
        let manifestType = Manifest.mediaTypes[0]
        layers.append(["mediaType": manifestType, "digest": list.digest.description, "size": raw.count])
        if chosen.inline == nil {
            layers.append(["mediaType": manifestType, "digest": chosen.digest.description, "size": child.raw.count])
        }
        object["layers"] = layers
        guard
            let data = try? JSONSerialization.data(
                withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
        else {
            return nil
        }
        return Array(data)
    }

    /// The legacy file, under the public registry's `registry.ollama.ai`
    /// spelling; a file under the other spelling is removed, so it cannot
    /// be read as an older version.
    private func writeLegacy(_ bytes: [UInt8], for name: ModelName) throws(HaulError) {
        let paths = legacyPaths(name)
        try FileSystem.makeDirectories(FileSystem.parent(of: paths[0]))
        try replace(paths[0]) { (temp) throws(HaulError) in try writeNew(temp, bytes) }
        for other in paths.dropFirst() { try removeEntry(other, below: manifestsDirectory) }
    }

    /// `blobs/sha256-<hex>` holding `bytes`, unless it holds them already.
    func writeManifestBlob(_ bytes: [UInt8]) throws(HaulError) -> Digest {
        let digest = Digest(hashing: bytes)
        let path = blobPath(digest)
        if FileSystem.size(path) == Int64(bytes.count),
            let fd = try? FileDescriptor.open(path, O_RDONLY | O_NOFOLLOW),
            (try? FileDigest.of(fd, size: Int64(bytes.count))) == digest
        {
            return digest
        }
        try FileSystem.makeDirectories(blobsDirectory)
        try FileSystem.writeAtomically(bytes, to: path)
        return digest
    }

    /// The v2 entry `entry` made a relative link to the blob (Ollama's
    /// `linkManifest`: `../../../../blobs/sha256-<hex>`, the same text
    /// Ollama's `filepath.Rel` gives), a hard link where links cannot be
    /// made, a copy where neither can.
    private func link(_ entry: String, to digest: Digest, bytes: [UInt8]) throws(HaulError) {
        try FileSystem.makeDirectories(FileSystem.parent(of: entry))
        let relative = "../../../../blobs/" + digest.fileName
        let blob = blobPath(digest)
        try replace(entry) { (temp) throws(HaulError) in
            if symlink(relative, temp) == 0 { return }
            if Glibc.link(blob, temp) == 0 { return }
            try writeNew(temp, bytes)
        }
    }

    /// Removes what writes killed mid-way left in `.haul/tmp/`: entries
    /// older than an hour (a live write renames its entry within
    /// milliseconds).
    private func sweepTemporaryEntries() {
        let now = Date().timeIntervalSince1970
        for name in FileSystem.listDirectory(temporaryDirectory) where name.hasPrefix("entry-") {
            let path = temporaryDirectory + "/" + name
            var st = stat()
            guard lstat(path, &st) == 0, now - Double(st.st_mtim.tv_sec) > 3600 else { continue }
            unlink(path)
        }
    }

    /// Makes a new entry under a temporary name (`make`), then renames it
    /// over `path` and makes the rename durable.
    private func replace(_ path: String, make: (String) throws(HaulError) -> Void) throws(HaulError) {
        let temp = temporaryDirectory + "/entry-" + FileSystem.randomHex(16)
        do {
            try make(temp)
            try FileSystem.check(rename(temp, path), "rename", path)
        } catch {
            unlink(temp)
            throw error
        }
        try FileSystem.syncDirectory(FileSystem.parent(of: path))
    }

    /// A new file (O_EXCL|O_NOFOLLOW) holding `bytes`, synced.
    private func writeNew(_ path: String, _ bytes: [UInt8]) throws(HaulError) {
        let fd = try FileDescriptor.open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW)
        try fd.writeAll(bytes)
        try fd.sync()
    }

    /// Removes one entry, then the directories it leaves empty up to (not
    /// including) the tree's own directory.
    func removeEntry(_ path: String, below tree: String) throws(HaulError) {
        guard FileSystem.lexists(path) else { return }
        if unlink(path) != 0 && errno != ENOENT { throw .io(operation: "remove", path: path, errno: errno) }
        var directory = FileSystem.parent(of: path)
        while directory != tree, directory.hasPrefix(tree + "/"), rmdir(directory) == 0 {
            directory = FileSystem.parent(of: directory)
        }
    }
}
