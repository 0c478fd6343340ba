#if canImport(Glibc)
import Glibc
#endif

/// A blob being downloaded: a preallocated data file in the partials
/// directory, locked against a second Haul process, with a resume journal
/// beside it, that becomes `blobs/sha256-<hex>` only through `commit` after
/// its digest matched.
///
/// The partials live outside `blobs/` because `ollama serve` deletes every
/// unknown file in `blobs/` at start-up (Ollama's `server/images.go` `PruneLayers`).
final class PartialBlob: CheckpointSink {
    let files: PartialFiles
    var path: String { files.data }
    /// The data file, locked; closed (and so unlocked) when this partial is
    /// released. The engine and the checkpoint writer borrow `fd`.
    private let descriptor: FileDescriptor
    var fd: Int32 { descriptor.rawValue }
    let size: Int64
    /// What the file already held and the journal vouched for.
    let resume: ResumePoint
    /// Why existing data was thrown away instead of resumed, if it was.
    let discarded: String?
    private let writer: CheckpointWriter

    /// Takes over a data file locked by `lockedDescriptor`: a file whose
    /// journal checks out is resumed; anything else is emptied. The size is
    /// then reserved on disk, so a full disk is reported now rather than
    /// mid-download. Owns the descriptor from here on; if this throws, it
    /// is closed with the rest of the half-made value.
    init(
        locked descriptor: consuming FileDescriptor, files: PartialFiles, digest: Digest, size: Int64, model: String,
        durableEvery: (bytes: Int64, seconds: Double) = (64 << 20, 2.0)
    ) throws(HaulError) {
        let fd = descriptor.rawValue
        let onDisk: Int64 = (try? descriptor.status()).map { Int64($0.st_size) } ?? -1
        let recovered = Self.recover(files, digest: digest, size: size, onDisk: onDisk, data: fd)
        Self.removeStaleTemps(of: files.journal)
        Self.removeStaleTemps(of: files.liveJournal)
        if recovered.journal == nil || recovered.journal!.point.ranges.count == 0 {
            files.removeJournals()
            try descriptor.truncate(to: 0)
        }
        try descriptor.allocate(size)
        self.files = files
        self.descriptor = descriptor
        self.size = size
        (resume, discarded) = (recovered.journal?.point ?? .empty, recovered.why)
        writer = CheckpointWriter(
            fd: fd, files: files, digest: digest, size: size, model: model,
            durableBytes: durableEvery.bytes, durableInterval: durableEvery.seconds)
    }

    /// Opens `path` (creating it) and takes its exclusive lock, waiting as
    /// long as another holder keeps it: another Haul process downloading
    /// the blob, or this process's previous attempt still letting go.
    /// `waiting` is called once if it has to wait.
    ///
    /// A lock won on a file that is no longer the one at `path` is useless:
    /// the previous holder renamed it to its final blob name (or removed
    /// it) while this one waited, and writing it would truncate a verified
    /// blob. So the locked descriptor is checked against the path (device,
    /// inode, link count) and the path opened again if they differ.
    static func lockedDescriptor(path: String, waiting: () -> Void) async throws -> FileDescriptor {
        var announced = false
        while true {
            let fd = try FileDescriptor.open(path, O_RDWR | O_CREAT | O_NOFOLLOW)
            while try !fd.tryLock(.exclusive) {
                if !announced {
                    announced = true
                    waiting()
                }
                try await Task.sleep(for: .milliseconds(100))
            }
            if fd.isStillAtPath { return fd }
            DebugTrace.log("\(FileSystem.basename(of: path)) changed while waiting for its lock; opening it again")
        }
    }

    /// SHA-256 of the data a journal's anchor covers (the last 4 KiB before
    /// the hashed offset: final bytes, never written again), or nil when
    /// nothing is hashed or the bytes cannot be read.
    static func anchor(of fd: Int32, hashed: Int64) -> Digest? {
        let range = ResumeJournal.anchorRange(hashed: hashed)
        guard !range.isEmpty else { return nil }
        var bytes = [UInt8](repeating: 0, count: Int(range.count))
        let n = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, off_t(range.lowerBound)) }
        guard n == bytes.count else { return nil }
        return Digest(bytes: SHA256.hash(bytes))
    }

    /// The resume point the journals give for this data file, or why there
    /// is none. Every claim is checked against what it describes (with
    /// `data`, the data file itself, by the journal's anchor); the live
    /// journal only counts if no reboot happened since it was written.
    static func recover(
        _ files: PartialFiles, digest: Digest, size: Int64, onDisk: Int64,
        data: Int32? = nil
    ) -> (journal: ResumeJournal?, why: String?) {
        func load(_ path: String) -> Result<ResumeJournal, ResumeJournal.Invalid>? {
            guard let bytes = try? FileSystem.readFile(path, limit: ResumeJournal.maxBytes) else { return nil }
            return Result { () throws(ResumeJournal.Invalid) in try ResumeJournal.decode(bytes) }
        }
        var candidates: [Result<ResumeJournal, ResumeJournal.Invalid>] = []
        if let live = load(files.liveJournal) {
            if case .success(let j) = live, j.boot == nil || j.boot != BootID.current {
                DebugTrace.log("\(digest.short) live journal is from another boot; using the durable one")
            } else {
                candidates.append(live)
            }
        }
        if let durable = load(files.journal) { candidates.append(durable) }
        guard !candidates.isEmpty else {
            return (nil, onDisk > 0 ? "partial data without a readable journal" : nil)
        }
        var why = ""
        for candidate in candidates {
            switch candidate {
            case .failure(let error):
                why = "journal rejected: \(error)"
            case .success(let journal):
                guard journal.digest == digest, journal.size == size else {
                    why = "journal describes \(journal.digest) of \(journal.size) bytes"
                    continue
                }
                guard onDisk == size else {
                    why = "data file is \(onDisk) bytes, expected \(size)"
                    continue
                }
                if let data, let anchor = journal.anchor, anchor != Self.anchor(of: data, hashed: journal.point.hashed)
                {
                    why = "the data file changed since its journal was written"
                    continue
                }
                return (journal, nil)
            }
        }
        return (nil, why)
    }

    /// Temp journals left by a process killed mid-write (the lock says no
    /// one else is writing them now).
    private static func removeStaleTemps(of journalPath: String) {
        let directory = FileSystem.parent(of: journalPath)
        let prefix = "." + FileSystem.basename(of: journalPath) + ".haul-tmp-"
        for name in FileSystem.listDirectory(directory) where name.hasPrefix(prefix) {
            unlink(directory + "/" + name)
        }
    }

    func checkpoint(_ point: ResumePoint) { writer.submit(point) }
    func finish(_ point: ResumePoint?) { writer.finish(point) }

    /// Returns once the engine let go of the file and the last checkpoint
    /// is on disk.
    func settled() async { await writer.settled() }

    /// Makes the verified data durable and gives it its final name; the
    /// journal goes last, so a crash in between leaves a blob plus a stale
    /// journal (cleaned up later), never a journal-less partial.
    func commit(to finalPath: String) throws(HaulError) {
        try descriptor.dataSync()
        try FileSystem.check(rename(files.data, finalPath), "rename", finalPath)
        try FileSystem.syncDirectory(FileSystem.parent(of: finalPath))
        files.removeJournals()
    }

    /// Removes the partial of a blob that is stored already (another
    /// process finished it while this one waited), holding its lock.
    static func removeLocked(_ descriptor: consuming FileDescriptor, files: PartialFiles) {
        files.removeAll()
        descriptor.close()
    }

    /// Removes the data and its journal (after a digest mismatch).
    func discard() { files.removeAll() }
}
