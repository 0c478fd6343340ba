import Synchronization

/// Blobs that pulls in flight are about to reference. Pruning after one
/// pull must not delete a blob another pull in this process has found
/// cached or just downloaded but not yet named in its manifest.
final class BlobPins: Sendable {
    private let counts = Mutex<[Digest: Int]>([:])

    func pin(_ digests: [Digest]) {
        counts.withLock { for d in digests { $0[d, default: 0] += 1 } }
    }

    func unpin(_ digests: [Digest]) {
        counts.withLock { counts in
            for d in digests {
                let n = (counts[d] ?? 1) - 1
                counts[d] = n > 0 ? n : nil
            }
        }
    }

    var pinned: Set<Digest> { counts.withLock { Set($0.keys) } }
}
