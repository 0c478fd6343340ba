#if canImport(Glibc)
import Glibc
#endif

/// The files of one partial blob, side by side in the partials directory:
/// the data (`sha256-<hex>-partial`), its durable journal (`….journal`) and
/// its live journal (`….journal.live`). One place names them; everything
/// that creates, checks or removes them goes through it.
struct PartialFiles: Sendable, Equatable {
    let data: String
    var journal: String { data + ".journal" }
    var liveJournal: String { data + ".journal.live" }

    /// Whether anything of the partial is on disk.
    var exist: Bool { [data, journal, liveJournal].contains(where: FileSystem.exists) }

    /// Journals first: a crash in between leaves data without a journal,
    /// which is never trusted, rather than a journal without its data.
    func removeJournals() {
        unlink(liveJournal)
        unlink(journal)
    }

    func removeAll() {
        removeJournals()
        unlink(data)
    }
}

extension ModelStore {
    func partialFiles(_ digest: Digest) -> PartialFiles { PartialFiles(data: partialPath(digest)) }
}
