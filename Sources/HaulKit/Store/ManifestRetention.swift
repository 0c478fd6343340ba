#if canImport(Glibc)
import Glibc
#endif

/// Which blobs the named manifests keep alive: the rule that decides what
/// a deletion may take. It counts what Ollama's garbage collection counts
/// (`manifest/manifest.go` `referencedBlobDigestsForData`: the manifest
/// blob itself, a list's children, the children's config and layers) and
/// errs towards keeping:
///
/// - every file at depth four of *both* trees is a root, a legacy file
///   shadowed by a v2 entry included, and a file whose name is not valid
///   (another process's write in progress);
/// - what a manifest keeps is every `sha256:<hex>` (or `sha256-<hex>`) its
///   bytes mention, so a manifest Haul cannot decode, or one whose bytes no
///   longer hash to their name, still protects everything it names;
/// - a list also keeps its children's own manifest blobs and what those
///   mention, and the identities of its inline children.
///
/// Only an entry that cannot be read at all (a dangling link, a link out of
/// the store, a file Haul may not open) protects nothing beyond the blob its
/// link names, and is reported.
extension ModelStore {
    /// Every digest the named manifests keep, and the entries that could
    /// not be read.
    func retainedDigests() -> (digests: Set<Digest>, unreadable: [UnreadableManifest]) {
        var digests = Set<Digest>()
        var unreadable: [UnreadableManifest] = []
        for ref in manifestRefs() {
            let (kept, problem) = retained(byEntryAt: ref.path, root: ref.root)
            digests.formUnion(kept)
            if let problem { unreadable.append(problem) }
        }
        return (digests, unreadable)
    }

    /// What the entries of `name` keep (its v2 entry and both legacy
    /// spellings): the candidates for deletion when it is removed or
    /// replaced.
    func retainedDigests(of name: ModelName) -> Set<Digest> {
        var digests = Set<Digest>()
        for (path, root) in [(v2Path(name), ManifestRoot.v2)] + legacyPaths(name).map({ ($0, ManifestRoot.legacy) })
        where FileSystem.lexists(path) {
            digests.formUnion(retained(byEntryAt: path, root: root).digests)
        }
        return digests
    }

    /// What one entry keeps, and why it could not be read if it could not.
    func retained(byEntryAt path: String, root: ManifestRoot) -> (digests: Set<Digest>, problem: UnreadableManifest?) {
        var digests = Set<Digest>()
        var st = stat()
        guard lstat(path, &st) == 0 else { return (digests, nil) }  // gone meanwhile
        var problem: UnreadableManifest?
        let entry: ManifestCache.Entry
        if (st.st_mode & S_IFMT) == S_IFLNK {
            // The blob the link names is kept even when the link cannot be
            // followed: it may be about to be written.
            let named = FileSystem.basename(of: StoredManifest.realPath(path) ?? StoredManifest.linkText(path))
            if let digest = Digest(ollamaSpelling: named) { digests.insert(digest) }
            do {
                entry = try StoredManifest.verifiedEntry(path, root: root, store: self).entry
            } catch {
                problem = UnreadableManifest(path: path, problem: Self.problem(error))
                // A blob of this store that no longer hashes to its name
                // still names what it kept.
                guard let damaged = linkedBlobBytes(path) else { return (digests, problem) }
                digests.formUnion(DigestScan.digests(in: damaged))
                return (digests.union(listChildren(of: damaged, mentioning: DigestScan.digests(in: damaged))), problem)
            }
        } else {
            do {
                entry = try StoredManifest.verifiedEntry(path, root: root, store: self).entry
            } catch {
                return (digests, UnreadableManifest(path: path, problem: Self.problem(error)))
            }
            digests.insert(entry.digest)
        }
        digests.formUnion(entry.mentioned)
        switch entry.content {
        case .success(.list(let list)):
            digests.formUnion(listChildren(list.children.map(\.digest)))
        case .failure where ManifestList.isList(entry.raw):
            digests.formUnion(listChildren(of: entry.raw, mentioning: entry.mentioned))
        default:
            break
        }
        return (digests, problem)
    }

    /// What a list's bytes keep through its children when they cannot be
    /// decoded as a list: the first `maxChildren` digests they mention
    /// are read as children.
    private func listChildren(of bytes: [UInt8], mentioning mentioned: Set<Digest>) -> Set<Digest> {
        guard ManifestList.isList(bytes) else { return [] }
        let children = (try? ManifestList(bytes: bytes))?.children.map(\.digest)
        return listChildren(children ?? Array(mentioned.sorted().prefix(ManifestList.maxChildren)))
    }

    /// The children themselves and every digest their manifest blobs
    /// mention (each distinct child once, from `ManifestCache`), so one
    /// hostile list of 4 MiB of digests cannot make a removal read the
    /// whole store: a list holds at most `maxChildren`.
    private func listChildren(_ children: [Digest]) -> Set<Digest> {
        var digests = Set(children)
        for child in Set(children) {
            let path = blobPath(child)
            guard let fd = try? FileDescriptor.open(path, O_RDONLY | O_NOFOLLOW), let status = try? fd.status(),
                let entry = try? StoredManifest.cached(fd, status, path: path)
            else { continue }
            digests.formUnion(entry.mentioned)
        }
        return digests
    }

    /// The bytes of the blob a link leads to when it leads to this store's
    /// blob but they do not hash to its name: still read for the digests
    /// they mention. Nil for a link that leads anywhere else.
    private func linkedBlobBytes(_ path: String) -> [UInt8]? {
        guard let target = StoredManifest.realPath(path),
            let digest = Digest(ollamaSpelling: FileSystem.basename(of: target))
        else { return nil }
        var linked = stat()
        guard stat(path, &linked) == 0, let fd = try? FileDescriptor.open(blobPath(digest), O_RDONLY | O_NOFOLLOW),
            let status = try? fd.status(), status.st_dev == linked.st_dev, status.st_ino == linked.st_ino
        else { return nil }
        return try? fd.readAll(limit: Manifest.maxBytes)
    }

    static func problem(_ error: HaulError) -> String {
        if case .storedManifest(_, let problem) = error { return problem }
        return error.description
    }
}

/// Every SHA-256 digest a text mentions, `sha256:` or `sha256-` and 64 hex
/// digits in either case.
enum DigestScan {
    static func digests(in bytes: [UInt8]) -> Set<Digest> {
        var out = Set<Digest>()
        let prefix = Array("sha256".utf8)
        let length = prefix.count + 1 + 64
        guard bytes.count >= length else { return out }
        var i = 0
        while i <= bytes.count - length {
            guard bytes[i] == prefix[0], Array(bytes[i..<i + prefix.count]) == prefix,
                bytes[i + prefix.count] == UInt8(ascii: ":") || bytes[i + prefix.count] == UInt8(ascii: "-")
            else {
                i += 1
                continue
            }
            let start = i + prefix.count + 1
            let hex = bytes[start..<start + 64]
            if hex.allSatisfy(Self.isHex),
                let digest = try? Digest(parsing: "sha256:" + String(decoding: hex, as: UTF8.self).lowercased())
            {
                out.insert(digest)
                i = start + 64
            } else {
                i += 1
            }
        }
        return out
    }

    private static func isHex(_ b: UInt8) -> Bool {
        (b >= 0x30 && b <= 0x39) || (b >= 0x61 && b <= 0x66) || (b >= 0x41 && b <= 0x46)
    }
}
