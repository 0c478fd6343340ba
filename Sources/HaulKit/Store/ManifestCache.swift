import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Manifests already read, hashed and decoded, by the identity of the file
/// they came from: device, inode, size, and modification and change times
/// to the nanosecond. A file rewritten in place changes its change time
/// (which no user can set back), a new file has a new inode, so an entry
/// is used only for the very bytes it was made from.
///
/// Every listing reads every named manifest and every list child it names;
/// without this, one 4 MiB child named by five tags was read and hashed
/// five times per `/api/tags`, per `/v2/` request and per `haul rm`.
/// Bounded by the bytes it holds (`limit`): the oldest entries go first.
final class ManifestCache: Sendable {
    /// The file an entry was made from.
    struct Identity: Hashable, Sendable {
        let device: UInt64
        let inode: UInt64
        let size: Int64
        let modified: Int64
        let modifiedNanoseconds: Int64
        let changed: Int64
        let changedNanoseconds: Int64

        init(_ st: stat) {
            device = UInt64(st.st_dev)
            inode = UInt64(st.st_ino)
            size = Int64(st.st_size)
            modified = Int64(st.st_mtim.tv_sec)
            modifiedNanoseconds = Int64(st.st_mtim.tv_nsec)
            changed = Int64(st.st_ctim.tv_sec)
            changedNanoseconds = Int64(st.st_ctim.tv_nsec)
        }
    }

    /// A file's bytes, their digest and what they decode to (or why they
    /// do not).
    struct Entry: Sendable {
        let raw: [UInt8]
        let digest: Digest
        let content: Result<StoredManifest.Content, HaulError>
        /// Every digest the bytes mention (`DigestScan`): what the file
        /// keeps from deletion, decodable or not.
        let mentioned: Set<Digest>
    }

    /// The cache every store of this process shares: entries are keyed by
    /// file, not by store.
    static let shared = ManifestCache(limit: 32 << 20)

    /// The most bytes of manifests held.
    let limit: Int

    private struct State {
        var entries: [Identity: Entry] = [:]
        /// Insertion order, for eviction; `head` is the oldest live slot.
        var order: [Identity] = []
        var head = 0
        var bytes = 0
    }
    private let state = Mutex(State())

    init(limit: Int) { self.limit = limit }

    /// The entry for the file `fd` is open on (`st` its status): cached,
    /// or made from `read()`'s bytes and kept. A failure to read is not
    /// kept; bytes that do not decode are (their problem is the entry).
    func entry(_ st: stat, read: () throws(HaulError) -> [UInt8]) throws(HaulError) -> Entry {
        let identity = Identity(st)
        if let hit = state.withLock({ $0.entries[identity] }) { return hit }
        let raw = try read()
        let content: Result<StoredManifest.Content, HaulError>
        do throws(HaulError) {
            content = .success(
                ManifestList.isList(raw) ? .list(try ManifestList(bytes: raw)) : .image(try Manifest(bytes: raw)))
        } catch {
            content = .failure(error)
        }
        let entry = Entry(
            raw: raw, digest: Digest(hashing: raw), content: content, mentioned: DigestScan.digests(in: raw))
        // Bytes read are as long as the file was when it was stat'ed, or
        // the file changed meanwhile: then the entry is used this once. A
        // file changed within the last second is not kept either: a file
        // system with coarse timestamps gives a second write in the same
        // tick the same change time (git's "racy" rule).
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        // A change time from the file system is not trusted to be sane: a
        // difference that overflows counts as recent (not kept).
        let (age, overflow) = Int64(now.tv_sec).subtractingReportingOverflow(identity.changed)
        let recent = overflow || age < 2
        guard raw.count == Int(identity.size), !recent else { return entry }
        keep(entry, as: identity)
        return entry
    }

    private func keep(_ entry: Entry, as identity: Identity) {
        let cost = entry.raw.count + 256
        guard cost <= limit else { return }
        state.withLock { s in
            if let old = s.entries.updateValue(entry, forKey: identity) {
                s.bytes -= old.raw.count + 256
            } else {
                s.order.append(identity)
            }
            s.bytes += cost
            while s.bytes > limit, s.head < s.order.count {
                let oldest = s.order[s.head]
                s.head += 1
                if let gone = s.entries.removeValue(forKey: oldest) { s.bytes -= gone.raw.count + 256 }
            }
            // Compact the order now and then: it only grows otherwise.
            if s.head > 1024, s.head * 2 > s.order.count {
                s.order.removeFirst(s.head)
                s.head = 0
            }
        }
    }

    /// The bytes held now (at most `limit`).
    var heldBytes: Int { state.withLock { $0.bytes } }
}
