import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Open upload sessions, kept beside the partials of downloads
/// (`.haul/uploads/`), so a push killed at any point asks the registry how
/// far each session got and goes on from there instead of sending the
/// blob again. One small file per (registry, repository, blob); the
/// session URL in it is a capability (distribution signs its `_state`), so
/// the files are the user's alone (0600).
struct UploadJournal: Sendable {
    let directory: String

    init(store: ModelStore) { directory = store.root + "/.haul/uploads" }

    struct Session: Codable, Sendable, Equatable {
        /// `scheme://host[:port]` of the registry.
        var origin: String
        var repository: String
        var digest: String
        var size: Int64
        /// The session's latest `Location`, absolute.
        var location: String
        /// The parts of an upload in Ollama's parts (`PartPlan`), if it is one.
        var parts: PartPlan.Saved? = nil
    }

    /// The session of `digest` to `repository` at `origin`, if one was recorded.
    func session(origin: String, repository: String, digest: Digest) -> Session? {
        let path = file(origin: origin, repository: repository, digest: digest)
        guard let fd = try? FileDescriptor.open(path, O_RDONLY | O_NOFOLLOW),
            let bytes = try? fd.readAll(limit: 64 << 10),
            let session = try? JSONDecoder().decode(Session.self, from: Data(bytes)),
            session.origin == origin, session.repository == repository, session.digest == digest.description
        else { return nil }
        return session
    }

    /// Records `session` (replacing the previous record atomically).
    func record(_ session: Session, digest: Digest) throws(HaulError) {
        try FileSystem.makeDirectories(directory)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard let bytes = try? encoder.encode(session) else { return }
        // Not synced: a record lost in a power cut only costs a fresh session.
        try FileSystem.writeAtomically(
            Array(bytes), to: file(origin: session.origin, repository: session.repository, digest: digest),
            fsyncFile: false, syncDirectory: false, permissions: 0o600)
    }

    /// Forgets the session (the blob is complete, or the registry forgot it).
    func remove(origin: String, repository: String, digest: Digest) {
        unlink(file(origin: origin, repository: repository, digest: digest))
    }

    /// A repository at `origin` that `digest` was pushed to (or found in)
    /// before: where a cross-repository mount can take it from.
    func knownRepository(origin: String, digest: Digest) -> String? {
        guard let fd = try? FileDescriptor.open(knownFile(origin: origin, digest: digest), O_RDONLY | O_NOFOLLOW),
            let bytes = try? fd.readAll(limit: 4096)
        else { return nil }
        let text = String(decoding: bytes, as: UTF8.self)
        // Only a repository name (the distribution grammar's characters) goes into a query.
        guard !text.isEmpty, text.utf8.allSatisfy({ Self.repositoryByte($0) }) else { return nil }
        return text
    }

    /// Notes that `repository` at `origin` holds `digest`.
    func remember(origin: String, repository: String, digest: Digest) {
        try? FileSystem.makeDirectories(directory)
        try? FileSystem.writeAtomically(
            Array(repository.utf8), to: knownFile(origin: origin, digest: digest),
            fsyncFile: false, syncDirectory: false, permissions: 0o600)
    }

    private static func repositoryByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
            UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"), UInt8(ascii: "/"):
            return true
        default: return false
        }
    }

    private func knownFile(origin: String, digest: Digest) -> String {
        directory + "/known-" + Digest(hashing: Array("\(origin)\n\(digest)".utf8)).hex.prefix(32)
    }

    /// Every record, for `haul partials`.
    func sessions() -> [Session] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { $0.hasPrefix("upload-") }.compactMap { name in
            guard let fd = try? FileDescriptor.open(directory + "/" + name, O_RDONLY | O_NOFOLLOW),
                let bytes = try? fd.readAll(limit: 64 << 10)
            else { return nil }
            return try? JSONDecoder().decode(Session.self, from: Data(bytes))
        }
    }

    /// A name from the session's identity, hashed: origins and
    /// repositories hold characters a file name cannot.
    private func file(origin: String, repository: String, digest: Digest) -> String {
        let key = Digest(hashing: Array("\(origin)\n\(repository)\n\(digest)".utf8))
        return directory + "/upload-" + key.hex.prefix(32)
    }
}

/// An upload a push left open (killed, or failed), which the same push
/// run again continues from what the registry holds.
public struct PendingUpload: Sendable {
    /// The blob.
    public let digest: Digest
    /// `scheme://host[:port]` of the registry.
    public let registry: String
    /// The repository there.
    public let repository: String
    /// The blob's size.
    public let size: Int64
}

extension ModelStore {
    /// Upload sessions pushes left open (`.haul/uploads/`), for `haul partials`.
    public func pendingUploads() -> [PendingUpload] {
        UploadJournal(store: self).sessions().compactMap { session in
            guard let digest = try? Digest(parsing: session.digest) else { return nil }
            return PendingUpload(
                digest: digest, registry: session.origin, repository: session.repository, size: session.size)
        }
    }
}
