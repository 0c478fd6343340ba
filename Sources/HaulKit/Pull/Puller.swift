/// One model pull: manifest, then every missing blob concurrently through
/// the engine, each verified as its last byte is hashed, then the manifest.
struct Puller: Sendable {
    let engine: Engine
    let store: ModelStore

    func pull(_ name: ModelName, insecure: Bool, emit: @escaping @Sendable (PullEvent) -> Void) async throws {
        let registry = RegistryClient(engine: engine, name: name, insecure: insecure)
        emit(.pullingManifest)
        let manifest = try await registry.fetchManifest()
        let blobs = try manifest.blobs
        let cached = Set(blobs.filter(store.hasBlob).map(\.digest))
        let plan = PullPlan(name: name, manifestDigest: manifest.digest, blobs: blobs, cached: cached)
        emit(.plan(plan))

        try store.prepareDirectories()
        if let available = FileSystem.availableSpace(store.partialsDirectory), plan.missingBytes > available {
            throw HaulError.insufficientSpace(path: store.root, needed: plan.missingBytes, available: available)
        }
        for layer in blobs where cached.contains(layer.digest) {
            emit(.progress(BlobProgress(digest: layer.digest, total: layer.size, completed: layer.size, hashed: layer.size)))
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for layer in blobs where !cached.contains(layer.digest) {
                group.addTask {
                    try await download(layer, url: registry.blobURL(layer.digest),
                                       headers: registry.registryHeaders, insecure: insecure, emit: emit)
                }
            }
            try await group.waitForAll()
        }
        // Every blob was verified as it completed; the step is kept because
        // Ollama clients expect it in the event sequence.
        emit(.verifying)
        emit(.writingManifest)
        try store.writeManifest(manifest, for: name)
        emit(.success)
    }

    private func download(_ layer: Layer, url: String, headers: [String], insecure: Bool,
                          emit: @escaping @Sendable (PullEvent) -> Void) async throws {
        let partial = try PartialBlob(path: store.partialPath(layer.digest), size: layer.size)
        let job = BlobJob(digest: layer.digest, size: layer.size, url: url, registryHeaders: headers,
                          fd: partial.fd, path: partial.path, insecure: insecure)
        var result: Digest?
        for await event in engine.download(job) {
            switch event {
            case .progress(let written, let hashed):
                emit(.progress(BlobProgress(digest: layer.digest, total: layer.size, completed: written, hashed: hashed)))
            case .finished(let digest):
                result = digest
            case .failed(let error):
                throw error
            }
        }
        try Task.checkCancellation()
        guard let got = result else { throw HaulError.cancelled }
        guard got == layer.digest else {
            partial.discard()
            throw HaulError.digestMismatch(want: layer.digest, got: got)
        }
        try partial.commit(to: store.blobPath(layer.digest))
    }
}
