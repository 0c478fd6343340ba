#if canImport(Glibc)
import Glibc
#endif

/// Re-hashes stored blobs. A blob is stored only after its digest matched,
/// but a disk, a tool or a person can change it later, and its size alone
/// says nothing. A blob that fails is moved out of `blobs/` into
/// `.haul/quarantine/`, so nothing goes on using it: a model that needs it
/// then fails loudly ("file does not exist") until it is fetched again.
public struct BlobVerifier: Sendable {
    /// The store whose blobs are checked.
    public let store: ModelStore

    /// A verifier of `store`'s blobs.
    public init(store: ModelStore) { self.store = store }

    /// A blob that failed.
    public struct Finding: Sendable, Equatable {
        /// The blob, as the manifests name it.
        public let layer: Layer
        /// Why it failed: missing, wrong size, or what it hashes to.
        public let problem: String
        /// The stored models that reference it.
        public let models: [ModelName]
    }

    /// What a verification found.
    public struct Report: Sendable {
        /// Every blob checked.
        public var checked: [Layer] = []
        /// The blobs that failed, each moved to the quarantine.
        public var bad: [Finding] = []
        /// Bytes read and hashed.
        public var bytes: Int64 = 0
    }

    /// Where failed blobs are moved (`.haul/quarantine` in the store).
    public var quarantineDirectory: String { store.root + "/.haul/quarantine" }

    /// Verifies every blob `models` reference (each once), calling
    /// `progress` before each. Bad blobs are quarantined.
    public func verify(_ models: [LocalModel], progress: (Layer) -> Void = { _ in }) throws(HaulError) -> Report {
        var report = Report()
        var users: [Digest: [ModelName]] = [:]
        var order: [Layer] = []
        for model in models {
            for layer in try model.manifest.blobs + model.manifestBlobs {
                if users[layer.digest] == nil { order.append(layer) }
                users[layer.digest, default: []].append(model.name)
            }
        }
        for layer in order {
            progress(layer)
            report.checked.append(layer)
            if let problem = try check(layer) {
                try quarantine(layer.digest)
                report.bad.append(Finding(layer: layer, problem: problem, models: users[layer.digest] ?? []))
            } else {
                report.bytes += layer.size
            }
        }
        return report
    }

    /// Nil if the blob is there, of its size, and hashes to its name.
    func check(_ layer: Layer) throws(HaulError) -> String? {
        let path = store.blobPath(layer.digest)
        guard let fd = try FileDescriptor.openExisting(path, O_RDONLY) else { return "missing" }
        let st = try fd.status()
        guard Int64(st.st_size) == layer.size else { return "\(st.st_size) bytes, the manifest says \(layer.size)" }
        let digest = try FileDigest.of(fd, size: layer.size)
        return digest == layer.digest ? nil : "its bytes hash to \(digest)"
    }

    private func quarantine(_ digest: Digest) throws(HaulError) {
        let path = store.blobPath(digest)
        guard FileSystem.exists(path) else { return }
        try FileSystem.makeDirectories(quarantineDirectory)
        let target = quarantineDirectory + "/" + digest.fileName
        try FileSystem.check(rename(path, target), "rename", target)
    }
}
