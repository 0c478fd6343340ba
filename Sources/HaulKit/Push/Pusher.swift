#if canImport(Glibc)
import Glibc
#endif

/// One model pushed from the store to a registry: every blob it needs
/// (config and layers; for a manifest list each child present and its
/// blobs), several at once, then the manifest's stored bytes unchanged
/// with their own media type, so the destination's digest is the
/// source's. Nothing in the store is changed by a push.
struct Pusher: Sendable {
    let engine: Engine
    let store: ModelStore
    let auth: RegistryAuth
    /// The largest request body.
    var chunk = UploadPlan.defaultChunk
    /// Blobs uploaded at once (each an ordered stream of chunks).
    var parallel = 4

    func push(
        _ source: ModelName, to destination: ModelName, insecure: Bool,
        emit: @escaping @Sendable (PushEvent) -> Void
    ) async throws {
        do {
            try await send(source, to: destination, insecure: insecure, emit: emit)
        } catch HaulError.unauthorized(let detail) {
            // The shared authorizer speaks of pulls; this is a push.
            throw HaulError.pushUnauthorized(detail)
        }
    }

    private func send(
        _ source: ModelName, to asked: ModelName, insecure: Bool,
        emit: @escaping @Sendable (PushEvent) -> Void
    ) async throws {
        // A model pushed to its own name goes under the stored spelling, as
        // Ollama's `PushHandler` resolves `getExistingName` first.
        let destination = asked == source ? (store.existingName(source)?.with(scheme: source.scheme) ?? source) : asked
        if destination.isCloud { throw HaulError.cloudModel(destination.displayShortest) }
        emit(.retrievingManifest)
        guard let stored = try store.storedManifest(for: source) else {
            emit(.manifestMissing)
            throw HaulError.modelNotFound(source.displayShortest)
        }
        let blobs = try Self.blobs(of: stored, in: store)
        for blob in blobs where !store.hasBlob(blob) {
            throw HaulError.push(
                blob: blob.digest, "missing from the store or the wrong size; run 'haul verify --repair'")
        }
        if destination.scheme == "http" && !insecure {
            throw HaulError.manifestUnreachable(url: "http://\(destination.host)", message: "insecure protocol http")
        }
        // Pinned for the push, so a `haul rm` or a prune in another process
        // cannot delete a blob before its turn comes.
        let pin = try StorePins(store: store).pin(blobs.map(\.digest))
        defer { pin.release() }
        let registry = RegistryClient(engine: engine, name: destination, insecure: insecure, auth: auth)
        let uploader = BlobUploader(registry: registry, journal: UploadJournal(store: store), chunk: chunk)
        let store = self.store
        try await withThrowingTaskGroup(of: Void.self) { group in
            var next = blobs.makeIterator()
            func start() -> Bool {
                guard let blob = next.next() else { return false }
                group.addTask {
                    let outcome = try await uploader.upload(
                        blob.digest, size: blob.size, path: store.blobPath(blob.digest)
                    ) { held in
                        emit(.pushing(digest: blob.digest, total: blob.size, completed: held))
                    }
                    switch outcome {
                    case .existed: emit(.present(digest: blob.digest, total: blob.size, mountedFrom: nil))
                    case .mounted(let from): emit(.present(digest: blob.digest, total: blob.size, mountedFrom: from))
                    case .sent: break
                    }
                }
                return true
            }
            for _ in 0..<max(1, parallel) where start() {}
            while try await group.next() != nil { _ = start() }
        }
        emit(.pushingManifest)
        let response = try await registry.send(
            registry.request(
                registry.manifestURL, method: "PUT", body: .bytes(stored.raw),
                headers: ["Content-Type: \(stored.mediaType)"]))
        guard response.status == 201 || response.status == 200 || response.status == 202 else {
            throw HaulError.pushManifest(
                "the registry refused the \(stored.mediaType) manifest (\(response.status)): "
                    + RegistryClient.errorText(response.body))
        }
        if let said = response.headers["docker-content-digest"], let got = try? Digest(parsing: said),
            got != stored.digest
        {
            throw HaulError.pushManifest(
                "the registry stored the manifest as \(got), not \(stored.digest): it rewrote the bytes")
        }
        emit(.success(digest: stored.digest))
    }

    /// Every blob a stored manifest needs at the destination, each once:
    /// the config and layers of each runnable manifest; for a list, the
    /// children present here (a reference child is itself a blob) and
    /// theirs. Children this store never pulled are not pushed, so a list
    /// pushed from here names children the destination may not have, as
    /// the store itself does.
    static func blobs(of stored: StoredManifest, in store: ModelStore) throws -> [Layer] {
        var out: [Layer] = []
        func add(_ layer: Layer) { if !out.contains(where: { $0.digest == layer.digest }) { out.append(layer) } }
        switch stored.content {
        case .image(let manifest):
            for layer in try manifest.blobs { add(layer) }
        case .list(let list):
            for child in list.children {
                guard let manifest = try store.childManifest(child) else { continue }
                if child.inline == nil {
                    add(Layer(mediaType: manifest.mediaType, digest: child.digest, size: Int64(manifest.raw.count)))
                }
                for layer in try manifest.blobs { add(layer) }
            }
        }
        return out
    }
}
