internal import CShims
#if canImport(Glibc)
import Glibc
#endif

/// A blob being downloaded: a preallocated data file in the partials
/// directory, locked against a second Haul process, with a resume journal
/// beside it, that becomes `blobs/sha256-<hex>` only through `commit` after
/// its digest matched.
///
/// The partials live outside `blobs/` because `ollama serve` deletes every
/// unknown file in `blobs/` at start-up (reference §6.4).
final class PartialBlob: CheckpointSink {
    let path: String
    let journalPath: String
    let fd: Int32
    let size: Int64
    /// What the file already held and the journal vouched for.
    let resume: ResumePoint
    /// Why existing data was thrown away instead of resumed, if it was.
    let discarded: String?
    private let writer: CheckpointWriter

    /// Opens (creating if needed) and locks the data file. A file whose
    /// journal checks out is resumed; anything else is emptied. The size is
    /// then reserved on disk, so a full disk is reported now rather than
    /// mid-download.
    init(path: String, digest: Digest, size: Int64, model: String,
         durableEvery: (bytes: Int64, seconds: Double) = (64 << 20, 2.0)) throws(HaulError) {
        let journalPath = path + ".journal"
        let fd = FileSystem.retrying { open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644) }
        try FileSystem.check(fd, "open", path)
        if !Self.lock(fd) {
            let code = errno
            close(fd)
            if code == EWOULDBLOCK {
                throw .io(operation: "lock (another haul process is downloading this blob)", path: path, errno: code)
            }
            throw .io(operation: "lock", path: path, errno: code)
        }
        self.path = path
        self.journalPath = journalPath
        self.fd = fd
        self.size = size
        var st = stat()
        let onDisk: Int64 = fstat(fd, &st) == 0 ? Int64(st.st_size) : -1
        let recovered = Self.recover(journalPath: journalPath, digest: digest, size: size, onDisk: onDisk)
        (resume, discarded) = (recovered.journal?.point ?? .empty, recovered.why)
        writer = CheckpointWriter(fd: fd, journalPath: journalPath, digest: digest, size: size, model: model,
                                  durableBytes: durableEvery.bytes, durableInterval: durableEvery.seconds)
        Self.removeStaleTemps(of: journalPath)
        Self.removeStaleTemps(of: journalPath + ".live")
        do {
            if resume.ranges.count == 0 {
                unlink(journalPath)
                unlink(journalPath + ".live")
                try FileSystem.check(ftruncate(fd, 0), "truncate", path)
            }
            try Self.preallocate(fd: fd, size: size, path: path)
        } catch {
            close(fd)
            throw error
        }
    }

    /// The resume point the journals give for this data file, or why there
    /// is none. Every claim is checked against what it describes; the live
    /// journal only counts if no reboot happened since it was written.
    static func recover(journalPath: String, digest: Digest, size: Int64,
                        onDisk: Int64) -> (journal: ResumeJournal?, why: String?) {
        func load(_ path: String) -> Result<ResumeJournal, ResumeJournal.Invalid>? {
            guard let bytes = try? FileSystem.readFile(path, limit: ResumeJournal.maxBytes) else { return nil }
            return Result { () throws(ResumeJournal.Invalid) in try ResumeJournal.decode(bytes) }
        }
        var candidates: [Result<ResumeJournal, ResumeJournal.Invalid>] = []
        if let live = load(journalPath + ".live") {
            if case .success(let j) = live, j.boot == nil || j.boot != BootID.current {
                DebugTrace.log("\(digest.short) live journal is from another boot; using the durable one")
            } else {
                candidates.append(live)
            }
        }
        if let durable = load(journalPath) { candidates.append(durable) }
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
                return (journal, nil)
            }
        }
        return (nil, why)
    }

    /// Takes the exclusive lock, waiting up to 2 s: the holder may be this
    /// process's own previous attempt, still closing its descriptor on a
    /// writer queue after it stopped.
    private static func lock(_ fd: Int32) -> Bool {
        for attempt in 0..<40 {
            if flock(fd, LOCK_EX | LOCK_NB) == 0 { return true }
            guard errno == EWOULDBLOCK, attempt < 39 else { return false }
            usleep(50_000)
        }
        return false
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

    /// fallocate reserves the blocks (no fragmentation, ENOSPC up front);
    /// on a resumed file it only fills the holes, leaving data alone.
    /// Filesystems without it get a sparse file of the right size instead.
    private static func preallocate(fd: Int32, size: Int64, path: String) throws(HaulError) {
        guard size > 0 else { return }
        if hl_fallocate(fd, 0, size) == 0 { return }
        let code = errno
        if code == EOPNOTSUPP || code == ENOSYS || code == EINVAL {
            try FileSystem.check(ftruncate(fd, off_t(size)), "truncate", path)
            return
        }
        throw .io(operation: "write", path: path, errno: code)
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
        try FileSystem.check(FileSystem.retrying { fdatasync(fd) }, "fsync", path)
        try FileSystem.check(rename(path, finalPath), "rename", finalPath)
        try FileSystem.syncDirectory(FileSystem.parent(of: finalPath))
        unlink(journalPath + ".live")
        unlink(journalPath)
    }

    /// Removes the data and its journal (after a digest mismatch).
    func discard() {
        unlink(journalPath + ".live")
        unlink(journalPath)
        unlink(path)
    }

    deinit { close(fd) }
}
