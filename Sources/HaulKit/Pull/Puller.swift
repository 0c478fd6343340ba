/// One model pull: manifest, then every missing blob concurrently through
/// the engine, each verified as its last byte is hashed, then the manifest.
struct Puller: Sendable {
    let engine: Engine
    let store: ModelStore
    /// Blob downloads in flight, shared with every other pull of this `Haul`.
    let downloads: SharedDownloads
    /// Bounds the blobs open at once across all pulls.
    let slots: BlobSlots
    /// Delete the blobs the replaced manifest used and nothing uses now.
    let prune: Bool
    let auth: RegistryAuth
    /// Mirrors to try before the registry (hosts.toml).
    let hosts: HostsDirectory
    /// Mirror skips and digest mismatches are counted here.
    let metrics: HaulMetrics

    /// Pulls `asked`. `runner` (already normalized) picks a manifest
    /// list's child; nil takes Ollama's order for this platform.
    func pull(_ asked: ModelName, insecure: Bool, runner: String? = nil, emit: @escaping @Sendable (PullEvent) -> Void)
        async throws
    {
        if asked.isCloud { throw HaulError.cloudModel(asked.displayShortest) }
        // A model stored under another spelling is updated, not duplicated
        // (Ollama's PullHandler resolves getExistingName first).
        // The scheme the user wrote still decides (http needs --insecure).
        let name = store.existingName(asked)?.with(scheme: asked.scheme) ?? asked
        let sources = try self.sources(for: name, insecure: insecure)
        // What imports that died left behind (a directory listing when
        // there is none; deleting gigabytes of copies when there is).
        let store = self.store
        _ = try? await BlockingIO.run { store.removeDeadStagedImports() }
        emit(.pullingManifest)
        switch try await resolve(name, from: sources, emit: emit) {
        case .image(let manifest):
            // A plain manifest has nothing to choose; a declared runner
            // other than the one asked for is refused (Ollama's `PullModel`).
            if let runner, !manifest.runner.isEmpty, manifest.runner != runner {
                throw HaulError.noCompatibleManifest(runners: [runner])
            }
            try await finish(name, manifest: manifest, stored: manifest.raw, sources: sources, emit: emit)
        case .list(let list):
            let preferences = runner.map { [$0] } ?? Runner.preferences
            guard let child = list.select(preferences: preferences, isLocal: { _ in true }) else {
                throw HaulError.noCompatibleManifest(runners: preferences)
            }
            // The list and its child stay pinned until the name names them:
            // a deletion in any process keeps them meanwhile.
            let digests = [list.digest, child.digest]
            let pin = try await BlockingIO.run { [store] () throws(HaulError) in
                try StorePins(store: store).pin(digests)
            }
            defer { pin.release() }
            let manifest = try await fetchChild(child.digest, name: name, sources: sources, emit: emit)
            // A v2 store keeps the list as received (its digest is the
            // tag's); a legacy one the child, which every Ollama can run.
            try await finish(
                name, manifest: manifest, stored: store.effectiveLayout == .v2 ? list.raw : manifest.raw,
                sources: sources, emit: emit)
        }
    }

    /// Fetches `manifest`'s blobs, then stores `stored` under the name (the
    /// list as received in a v2 store; the runnable manifest otherwise,
    /// which every Ollama can read) and prunes what the old version used.
    private func finish(
        _ name: ModelName, manifest: Manifest, stored: [UInt8], sources: [RegistryClient],
        emit: @escaping @Sendable (PullEvent) -> Void
    ) async throws {
        let store = self.store
        try await fetchBlobs(of: manifest, name: name, sources: sources, emit: emit) {
            // Every blob was verified as it completed; the step is kept
            // because Ollama clients expect it in the event sequence.
            emit(.verifying)
            emit(.writingManifest)
            let replaced = store.retainedDigests(of: name)
            try await BlockingIO.run { [store] () throws(HaulError) in try store.writeManifest(raw: stored, for: name) }
            if prune {
                await pruneLayers(replaced.subtracting(store.retainedDigests(of: name)), emit: emit)
            }
        }
        emit(.success)
    }

    /// A list child's manifest, fetched as Ollama fetches it
    /// (`pullSelectedManifest`): its size by `HEAD` of the blob (a
    /// `Content-Length` is required), then the blob through the engine like
    /// any other (verified as it arrives, resumable, through mirrors),
    /// reported as `pulling model`. A child that is itself a list is refused.
    private func fetchChild(
        _ digest: Digest, name: ModelName, sources: [RegistryClient],
        emit: @escaping @Sendable (PullEvent) -> Void
    ) async throws -> Manifest {
        let pullers = sources.filter { $0.host.capabilities.contains(.pull) }
        var size: Int64?
        for (index, source) in pullers.enumerated() {
            do {
                size = try await source.blobSize(digest)
                if size != nil { break }
            } catch let error where index < pullers.count - 1 && !(error is CancellationError) {
                metrics.mirrorSkipped(source.host.authority)
                emit(
                    .notice(
                        "\(source.host) skipped for manifest \(digest.short): \(error); trying \(pullers[index + 1].host)"
                    ))
            }
        }
        guard let size else { throw HaulError.blobNotFound(digest) }
        guard size <= Int64(Manifest.maxBytes) else {
            throw HaulError.manifestInvalid("list child \(digest) is \(size) bytes, more than \(Manifest.maxBytes)")
        }
        let layer = Layer(mediaType: Manifest.mediaTypes[0], digest: digest, size: size)
        let store = self.store
        if store.hasBlob(layer) {
            emit(.manifestProgress(total: size, completed: size))
        } else {
            try store.prepareDirectories()
            let watch = downloads.join(digest) { emit in
                guard !store.hasBlob(layer) else { return }
                try await slots.withSlot {
                    try await download(layer, model: name.displayShortest, from: pullers, emit: emit)
                }
            }
            for try await event in watch.events {
                switch event {
                case .progress(let p), .resuming(let p): emit(.manifestProgress(total: p.total, completed: p.completed))
                case .notice, .source: emit(event)
                default: break
                }
            }
            if Task.isCancelled {
                await downloads.settle(watch)
                throw CancellationError()
            }
        }
        let bytes = try FileSystem.readFile(store.blobPath(digest), limit: Manifest.maxBytes)
        guard Digest(hashing: bytes) == digest else {
            throw HaulError.digestMismatch(want: digest, got: Digest(hashing: bytes))
        }
        guard !ManifestList.isList(bytes) else {
            throw HaulError.manifestInvalid("nested manifest lists are not supported")
        }
        return try Manifest(bytes: bytes)
    }

    /// Fetches again the blobs of a stored model that are missing (after
    /// `haul verify` quarantined them), from the registry it came from,
    /// without asking it for the manifest again: the stored one says which
    /// bytes the model is.
    func repair(_ name: ModelName, insecure: Bool, emit: @escaping @Sendable (PullEvent) -> Void) async throws {
        guard let manifest = try store.manifest(for: name) else { throw HaulError.modelNotFound(name.displayShortest) }
        try await fetchBlobs(of: manifest, name: name, sources: sources(for: name, insecure: insecure), emit: emit) {}
        emit(.success)
    }

    /// The digest `name`'s tag has at its registry now (through the first
    /// host that may resolve and answers).
    func remoteDigest(_ name: ModelName, insecure: Bool) async throws -> Digest {
        let resolvers = try sources(for: name, insecure: insecure).filter { $0.host.capabilities.contains(.resolve) }
        var last: (any Error)?
        for source in resolvers {
            do {
                return try await source.manifestDigest()
            } catch let error where !(error is CancellationError) {
                last = error
            }
        }
        throw last ?? HaulError.manifestNotFound
    }

    /// The hosts serving `name`, mirrors first (`HF_ENDPOINT` before any
    /// hosts.toml ones), each with its own client.
    private func sources(for name: ModelName, insecure: Bool) throws(HaulError) -> [RegistryClient] {
        let configured = try hosts.hosts(for: name, insecure: insecure)
        let huggingFaceMirror = try auth.huggingFace.mirror(for: name).map { [$0] } ?? []
        return (huggingFaceMirror + configured).map {
            RegistryClient(engine: engine, name: name, host: $0, insecure: insecure, auth: auth)
        }
    }

    /// The manifest or list, from the first host that may resolve tags and
    /// answers. A mirror that fails is skipped with a notice; the last
    /// host's error is the pull's.
    private func resolve(
        _ name: ModelName, from sources: [RegistryClient],
        emit: @escaping @Sendable (PullEvent) -> Void
    ) async throws -> FetchedManifest {
        let resolvers = sources.filter { $0.host.capabilities.contains(.resolve) }
        guard !resolvers.isEmpty else {
            throw HaulError.hostsConfig(
                path: hosts.file(for: name.host) ?? "hosts.toml", line: nil,
                message: "no host may resolve \(name.displayShortest) (give one the \"resolve\" capability)")
        }
        for (index, source) in resolvers.enumerated() {
            do {
                return try await source.fetchManifest()
            } catch let error where index < resolvers.count - 1 && !(error is CancellationError) {
                metrics.mirrorSkipped(source.host.authority)
                emit(.notice("\(source.host) skipped for the manifest: \(error); trying \(resolvers[index + 1].host)"))
            }
        }
        preconditionFailure("the last resolver returns or throws")
    }

    /// Pins the manifest's blobs, announces the plan, fetches the missing
    /// ones, then runs `finish` while they are still pinned.
    private func fetchBlobs(
        of manifest: Manifest, name: ModelName, sources: [RegistryClient],
        emit: @escaping @Sendable (PullEvent) -> Void, finish: () async throws -> Void
    ) async throws {
        let blobs = try manifest.blobs
        // Pinned before looking for cached blobs: a deletion in any process
        // either ran before (and the blob is fetched again) or keeps it.
        // The manifest's own blob too: a v2 write stores it last.
        let pinned = blobs.map(\.digest) + [manifest.digest]
        let pin = try await BlockingIO.run { [store] () throws(HaulError) in try StorePins(store: store).pin(pinned) }
        defer { pin.release() }
        let cached = Set(blobs.filter(store.hasBlob).map(\.digest))
        let plan = PullPlan(name: name, manifestDigest: manifest.digest, blobs: blobs, cached: cached)
        emit(.plan(plan))
        let pullers = sources.filter { $0.host.capabilities.contains(.pull) }
        guard !pullers.isEmpty else {
            throw HaulError.hostsConfig(
                path: hosts.file(for: name.host) ?? "hosts.toml", line: nil,
                message: "no host may pull blobs of \(name.displayShortest) (give one the \"pull\" capability)")
        }
        try await fetchMissing(blobs, cached: cached, plan: plan, name: name, sources: pullers, emit: emit)
        try await finish()
    }

    /// Downloads every blob not in `cached`, each verified as it completes.
    private func fetchMissing(
        _ blobs: [Layer], cached: Set<Digest>, plan: PullPlan, name: ModelName,
        sources: [RegistryClient], emit: @escaping @Sendable (PullEvent) -> Void
    ) async throws {
        try store.prepareDirectories()
        // Partials already allocated need no new space.
        let reserved = blobs.filter { !cached.contains($0.digest) }.reduce(Int64(0)) {
            $0 + store.partialAllocation($1)
        }
        if let available = FileSystem.availableSpace(store.partialsDirectory), plan.missingBytes - reserved > available
        {
            throw HaulError.insufficientSpace(
                path: store.root, needed: plan.missingBytes - reserved, available: available)
        }
        for layer in blobs where cached.contains(layer.digest) {
            store.removeStalePartial(layer.digest)
            emit(
                .progress(
                    BlobProgress(digest: layer.digest, total: layer.size, completed: layer.size, hashed: layer.size)))
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for layer in blobs where !cached.contains(layer.digest) {
                group.addTask {
                    let watch = downloads.join(layer.digest) { emit in
                        // It may have landed while this pull read the manifest.
                        guard !store.hasBlob(layer) else { return }
                        try await slots.withSlot {
                            try await download(layer, model: name.displayShortest, from: sources, emit: emit)
                        }
                    }
                    for try await event in watch.events { emit(event) }
                    // Cancellation ends the watch without an error; the pull
                    // ends once the download it left has stopped.
                    if Task.isCancelled {
                        await downloads.settle(watch)
                        throw CancellationError()
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    /// Ollama's post-pull pruning (`server/images.go` `PullModel`,
    /// `deleteUnusedLayers`): the blobs the replaced manifest kept (its
    /// manifest blob included) that no named manifest keeps any more, and
    /// only those older than the grace period. Failing here does not fail
    /// the pull; it is reported as a status, and a manifest that blocked
    /// the sweep is named once.
    private func pruneLayers(_ candidates: Set<Digest>, emit: (PullEvent) -> Void) async {
        guard !candidates.isEmpty else { return }
        emit(.removingUnusedLayers)
        do {
            let removal = try await BlockingIO.run { [store] () throws(HaulError) in
                try store.removeUnreferencedBlobs(candidates, grace: ModelStore.pruneGracePeriod)
            }
            if let first = removal.unreadable.first {
                emit(.notice(ModelStore.sweepNotice(first, count: removal.unreadable.count)))
            }
        } catch {
            emit(.status("couldn't remove unused layers: \(error)"))
        }
    }

    /// Downloads and commits one blob from the first source that delivers
    /// it whole and right. A mirror that fails (unreachable, an error, a
    /// wrong digest) is skipped for this blob with a notice; what it wrote
    /// and what is right stays for the next source to resume, and a wrong
    /// result is discarded before the next one starts. Nothing is stored
    /// unverified, whichever host sent it.
    private func download(
        _ layer: Layer, model: String, from sources: [RegistryClient],
        emit: @escaping @Sendable (PullEvent) -> Void
    ) async throws {
        for (index, source) in sources.enumerated() {
            let last = index == sources.count - 1
            do {
                try await download(layer, model: model, registry: source, freshRetry: last, emit: emit)
                DebugTrace.log("\(layer.digest.short) stored, from \(source.host)")
                emit(.source(digest: layer.digest, host: source.host.authority))
                return
            } catch let error where !last && !(error is CancellationError) && !Task.isCancelled {
                DebugTrace.log("\(layer.digest.short) \(source.host) failed: \(error)")
                metrics.mirrorSkipped(source.host.authority)
                emit(
                    .notice(
                        "\(source.host) skipped for \(layer.digest.short): \(error); trying \(sources[index + 1].host)")
                )
            }
        }
    }

    /// Downloads and commits one blob from one source. If the result fails
    /// its digest, the data is discarded and, with `freshRetry`, the blob
    /// fetched once more from scratch: the old data of a resumed download
    /// may be what is wrong (a disk that lost writes), or the server's bytes
    /// changed mid-blob (a mirror being updated). A second mismatch is
    /// reported.
    private func download(
        _ layer: Layer, model: String, registry: RegistryClient, freshRetry: Bool,
        emit: @escaping @Sendable (PullEvent) -> Void
    ) async throws {
        let config = engine.configuration
        var freshAttemptLeft = freshRetry
        // Renewals of an expired token in a row without new bytes on disk.
        var reauthorizations = 0
        var lastResumed: Int64 = -1
        while true {
            // A pull cancelled before this blob started leaves no partial.
            try Task.checkCancellation()
            let files = store.partialFiles(layer.digest)
            let fd = try await PartialBlob.lockedDescriptor(path: files.data) {
                emit(.status("waiting for another Haul process to finish \(layer.digest.fileName)"))
            }
            // The holder this one waited for may have stored the blob.
            if store.hasBlob(layer) {
                PartialBlob.removeLocked(fd, files: files)
                emit(
                    .progress(
                        BlobProgress(digest: layer.digest, total: layer.size, completed: layer.size, hashed: layer.size)
                    ))
                return
            }
            let durable = (config.durableCheckpointBytes, MonotonicClock.seconds(config.durableCheckpointInterval))
            let partial = try await BlockingIO.run(with: fd) { fd throws(HaulError) in
                try PartialBlob(
                    locked: fd, files: files, digest: layer.digest, size: layer.size, model: model,
                    durableEvery: durable)
            }
            let resumed = partial.resume.ranges.count > 0
            if partial.resume.ranges.count > lastResumed { reauthorizations = 0 }
            lastResumed = partial.resume.ranges.count
            if let why = partial.discarded {
                DebugTrace.log("\(layer.digest.short) not resuming: \(why)")
            }
            if resumed {
                emit(
                    .resuming(
                        BlobProgress(
                            digest: layer.digest, total: layer.size,
                            completed: partial.resume.ranges.count, hashed: partial.resume.hashed)))
            }
            let got: Digest
            do {
                got = try await fetch(
                    layer, into: partial, url: registry.blobURL(layer.digest),
                    headers: registry.registryHeaders, tls: registry.tls,
                    fromMirror: registry.host.isMirror, addressPolicy: registry.addressPolicy, emit: emit)
            } catch HaulError.blobUnauthorized(let challenge) where reauthorizations < 3 {
                // A token that expired mid-pull: get a new one and resume
                // from what is on disk (short-lived tokens may need this
                // many times over a long pull).
                reauthorizations += 1
                try await registry.reauthorize(challenge: challenge)
                continue
            }
            if got == layer.digest {
                let final = store.blobPath(layer.digest)
                try await BlockingIO.run { () throws(HaulError) in try partial.commit(to: final) }
                return
            }
            partial.discard()
            metrics.digestMismatch(from: registry.host.authority)
            guard freshAttemptLeft else {
                throw HaulError.digestMismatch(want: layer.digest, got: got)
            }
            DebugTrace.log(
                "\(layer.digest.short) \(resumed ? "resumed data" : "download") gave \(got); downloading it again from scratch"
            )
            freshAttemptLeft = false
        }
    }

    /// Runs the engine on one partial. Whatever happens, it returns only
    /// after the engine let go of the file and its last checkpoint is
    /// written, so a cancelled pull leaves a resumable partial behind.
    private func fetch(
        _ layer: Layer, into partial: PartialBlob, url: String, headers: [String],
        tls: HostTLS?, fromMirror: Bool, addressPolicy: AddressPolicy,
        emit: @escaping @Sendable (PullEvent) -> Void
    ) async throws -> Digest {
        let job = BlobJob(
            digest: layer.digest, size: layer.size, url: url, registryHeaders: headers,
            fd: partial.fd, path: partial.path,
            resume: partial.resume, checkpoints: partial, tls: tls, fromMirror: fromMirror,
            addressPolicy: addressPolicy)
        var result: Result<Digest, HaulError> = .failure(.cancelled)
        for await event in engine.download(job) {
            switch event {
            case .progress(let written, let hashed):
                emit(
                    .progress(BlobProgress(digest: layer.digest, total: layer.size, completed: written, hashed: hashed))
                )
            case .finished(let digest):
                result = .success(digest)
            case .failed(let error):
                result = .failure(error)
            }
        }
        await partial.settled()
        try Task.checkCancellation()
        return try result.get()
    }
}
