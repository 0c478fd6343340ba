import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Sends one blob of the store to a registry, by the distribution spec:
/// `HEAD` first (a blob the registry has is not sent again), then an
/// upload session (`POST`), ordered `PATCH`es of `UploadPlan`'s chunks
/// read straight from the blob file, and the closing `PUT ?digest=`, which
/// the registry checks against the bytes it received. The session is
/// journaled after every chunk, so a rerun after a kill asks the registry
/// how far it got (`GET <session>`) and sends only the rest. A network
/// failure asks the same and goes on; a session the registry has
/// forgotten starts over for this blob only.
struct BlobUploader: Sendable {
    let registry: RegistryClient
    let journal: UploadJournal
    var chunk: Int64 = UploadPlan.defaultChunk
    /// Network failures in a row that one blob survives.
    var retryLimit = 5

    enum Outcome: Sendable, Equatable {
        /// The registry had it.
        case existed
        /// The registry took it from another of its repositories (a
        /// cross-repository mount): nothing was sent.
        case mounted(from: String)
        /// Sent; `resumedAt` bytes were already at the registry.
        case sent(resumedAt: Int64)
    }

    /// Uploads `digest` (`size` bytes at `path`), reporting the bytes the
    /// registry holds as they grow.
    func upload(_ digest: Digest, size: Int64, path: String, progress: @Sendable (Int64) -> Void) async throws
        -> Outcome
    {
        let origin = registry.host.origin
        let repository = registry.name.repository
        if try await exists(digest) {
            journal.remove(origin: origin, repository: repository, digest: digest)
            journal.remember(origin: origin, repository: repository, digest: digest)
            return .existed
        }
        // Pushed to another repository of this registry before: ask the
        // registry to mount it from there (201), else upload as usual.
        if let from = journal.knownRepository(origin: origin, digest: digest), from != repository,
            try await mount(digest, from: from)
        {
            journal.remember(origin: origin, repository: repository, digest: digest)
            return .mounted(from: from)
        }
        let file = try FileDescriptor.open(path, O_RDONLY | O_NOFOLLOW)
        guard Int64(try file.status().st_size) == size else {
            throw HaulError.push(blob: digest, "the stored blob is not \(size) bytes; run 'haul verify --repair'")
        }
        var session = try await resumeOrOpen(digest, size: size)
        if session.parts != nil {
            return try await uploadInParts(digest, size: size, fd: file.rawValue, session: session, progress: progress)
        }
        let resumedAt = session.held
        progress(session.held)
        var failures = 0
        var budget = ResendBudget(size: size)
        while true {
            try Task.checkCancellation()
            let plan = UploadPlan(size: size, chunk: chunk, registryMinimum: session.minimum)
            let step = plan.next(held: session.held)
            // A registry that keeps a little of each chunk (one byte, say)
            // makes progress every time and would be sent the blob over and
            // over: bytes sent, not answers, bound the loop.
            switch step {
            case .patch(let range), .finish(let range):
                guard budget.spend(range.upperBound - range.lowerBound, chunk: plan.chunk) else {
                    throw HaulError.push(
                        blob: digest,
                        "\(origin) kept only \(session.held) of \(size) bytes after \(budget.sent) were sent; "
                            + "the registry keeps too little of each chunk (try again later, or with another --chunk-size)"
                    )
                }
            }
            let response: HTTPResponse
            do {
                switch step {
                case .patch(let range):
                    response = try await registry.send(
                        registry.request(
                            session.url, method: "PATCH", body: .file(fd: file.rawValue, range: range),
                            headers: [
                                "Content-Type: application/octet-stream",
                                "Content-Range: \(range.lowerBound)-\(range.upperBound - 1)"
                            ]))
                case .finish(let range):
                    let separator = session.url.contains("?") ? "&" : "?"
                    response = try await registry.send(
                        registry.request(
                            session.url + separator + "digest=" + digest.description, method: "PUT",
                            body: range.isEmpty ? nil : .file(fd: file.rawValue, range: range),
                            headers: ["Content-Type: application/octet-stream"]))
                }
            } catch let error as HaulError where Self.isNetwork(error) {
                // The connection broke mid-request: what the registry kept
                // decides where to go on.
                failures += 1
                guard failures <= retryLimit else { throw HaulError.push(blob: digest, "\(error)") }
                try await Task.sleep(for: .milliseconds(250 << min(failures, 5)))
                session = try await refresh(session, digest: digest, size: size)
                continue
            }
            switch (step, response.status) {
            case (.patch(let range), 202):
                guard let next = registry.sessionURL(response.headers["location"]) ?? Optional(session.url) else {
                    continue
                }
                // The registry's word is what it holds; a registry claiming
                // more than it was sent is not believed.
                let held = try heldBytes(response, digest) ?? range.upperBound
                guard held <= range.upperBound else {
                    throw HaulError.push(
                        blob: digest, "the registry says it holds \(held) bytes after \(range.upperBound) were sent")
                }
                // A registry that keeps nothing of what it accepts would be
                // sent the same chunk forever: no progress counts as a failure.
                if held <= session.held {
                    failures += 1
                    guard failures <= retryLimit else {
                        throw HaulError.push(
                            blob: digest,
                            "the registry accepts chunks but keeps none of them (it still holds \(held) bytes)")
                    }
                } else {
                    failures = 0
                }
                session.url = next
                session.held = held
                try record(session, digest: digest, size: size)
                progress(held)
            case (.finish, 201), (.finish, 204), (.finish, 200):
                journal.remove(origin: origin, repository: repository, digest: digest)
                // A registry that files the blob under another digest is
                // not remembered as holding it (no mount will come from it).
                if let said = response.headers["docker-content-digest"], let got = try? Digest(parsing: said),
                    got != digest
                {
                    throw HaulError.push(blob: digest, "the registry stored it as \(got)")
                }
                journal.remember(origin: origin, repository: repository, digest: digest)
                progress(size)
                return .sent(resumedAt: resumedAt)
            case (_, 404):
                // The registry forgot the session (expired, restarted):
                // this blob starts over, nothing else does.
                journal.remove(origin: origin, repository: repository, digest: digest)
                failures += 1
                guard failures <= retryLimit else {
                    throw HaulError.push(blob: digest, "the registry keeps losing the upload session")
                }
                session = try await open(digest, size: size)
                if session.parts != nil {
                    return try await uploadInParts(
                        digest, size: size, fd: file.rawValue, session: session, progress: progress)
                }
            case (_, 416):
                // Out of order by the registry's count: ask it where it is.
                failures += 1
                guard failures <= retryLimit else {
                    throw HaulError.push(blob: digest, "the registry refuses the upload's ranges (416)")
                }
                session = try await refresh(session, digest: digest, size: size)
            case (.finish, 400):
                throw HaulError.push(
                    blob: digest,
                    "the registry refused it: \(RegistryClient.errorText(response.body)) "
                        + "(if the bytes do not match the digest, run 'haul verify --repair')")
            case (_, let status) where status == 429 || status >= 500:
                failures += 1
                guard failures <= retryLimit else {
                    throw HaulError.push(
                        blob: digest, "the registry answered \(status): \(RegistryClient.errorText(response.body))")
                }
                try await Task.sleep(for: .milliseconds(250 << min(failures, 5)))
                session = try await refresh(session, digest: digest, size: size)
            default:
                throw HaulError.push(blob: digest, Self.describe(response))
            }
        }
    }

    /// One upload session: where it is and how much the registry holds.
    struct Session: Sendable {
        var url: String
        var held: Int64
        /// The registry's `OCI-Chunk-Min-Length`, if it set one.
        var minimum: Int64?
        /// The parts, when the registry takes uploads Ollama's way.
        var parts: PartPlan? = nil
    }

    private func exists(_ digest: Digest) async throws -> Bool {
        // A registry may answer for its blobs with a redirect to their
        // storage (a CDN): followed, under the registry's address policy
        // and without its credentials on another host (curl drops them).
        var request = registry.request(registry.blobURL(digest), head: true)
        request.followRedirects = true
        let response = try await sendRetrying(request)
        switch response.status {
        case 200: return true
        case 404: return false
        default: throw HaulError.push(blob: digest, Self.describe(response))
        }
    }

    /// `POST …/blobs/uploads/?mount=<digest>&from=<repository>`: true when
    /// the registry mounted it (201). A registry that declines opens a
    /// session instead (202), which is cancelled here: the journal's own
    /// session, resumable, is the one used.
    private func mount(_ digest: Digest, from: String) async throws -> Bool {
        let response = try await sendRetrying(
            registry.request(registry.uploadsURL + "?mount=\(digest)&from=\(from)", method: "POST"))
        if response.status == 201 { return true }
        if response.status == 202, let url = registry.sessionURL(response.headers["location"]) {
            _ = try? await registry.send(registry.request(url, method: "DELETE"))
        }
        return false
    }

    /// A request that sends no blob bytes (a HEAD, a POST that opens a
    /// session), sent again after a network failure, 429 or 5xx, a bounded
    /// number of times: a registry's bad second does not fail the push.
    /// A session a failed POST may have opened is abandoned to the
    /// registry's expiry, as any client's is.
    private func sendRetrying(_ request: HTTPRequest) async throws -> HTTPResponse {
        var failures = 0
        while true {
            do {
                let response = try await registry.send(request)
                guard response.status == 429 || response.status >= 500, failures < retryLimit else { return response }
            } catch let error as HaulError
                where Self.isNetwork(error) && !AddressPolicy.isRefusal(error) && failures < retryLimit
            {
            }
            failures += 1
            try await Task.sleep(for: .milliseconds(250 << min(failures, 5)))
        }
    }

    /// The journaled session, if the registry still has it, else a new one.
    private func resumeOrOpen(_ digest: Digest, size: Int64) async throws -> Session {
        let origin = registry.host.origin
        let repository = registry.name.repository
        if let recorded = journal.session(origin: origin, repository: repository, digest: digest),
            recorded.size == size,
            let url = registry.sessionURL(recorded.location)
        {
            // Ollama's registry says nothing of a parts session's progress
            // (what its GET answers is not known): the journal knows which
            // parts were sent, and the rest go to the URLs it recorded.
            if let saved = recorded.parts {
                if let plan = PartPlan(size: size, saved: saved) {
                    return Session(url: url, held: plan.held, parts: plan)
                }
            } else if let status = try? await status(of: url, digest: digest) {
                return status
            }
        }
        journal.remove(origin: origin, repository: repository, digest: digest)
        return try await open(digest, size: size)
    }

    /// `POST …/blobs/uploads/`: a new session, journaled.
    func open(_ digest: Digest, size: Int64) async throws -> Session {
        let response = try await sendRetrying(registry.request(registry.uploadsURL, method: "POST"))
        guard response.status == 202 else { throw HaulError.push(blob: digest, Self.describe(response)) }
        // Ollama's client reads `Docker-Upload-Location` before `Location`
        // (`server/upload.go` `Prepare`): its registry sends it, and
        // distribution does not, so it marks a registry that takes
        // uploads in Ollama's parts.
        let ollama = response.headers["docker-upload-location"]
        let location = ollama ?? response.headers["location"]
        guard let url = registry.sessionURL(location) else {
            throw HaulError.push(
                blob: digest,
                "the registry put the upload session at \(HaulError.quoted(location ?? "(nowhere)")), "
                    + "not on its own host; Haul sends the blob and credentials only to the registry itself")
        }
        var session = Session(url: url, held: 0, minimum: Self.chunkMinimum(response))
        if ollama != nil || ModelName.publicHosts.contains(AddressPolicy.bare(registry.host.authority)) {
            // The public registry gets the requests Ollama sends it, the
            // only ones known to work there.
            session.parts = PartPlan(size: size, session: url)
        }
        try record(session, digest: digest, size: size)
        return session
    }

    /// `GET <session>`: how much the registry holds (204 and `Range`);
    /// nil when it no longer knows the session.
    private func status(of url: String, digest: Digest) async throws -> Session? {
        let response = try await registry.send(registry.request(url))
        guard response.status == 204 || response.status == 202 || response.status == 200 else { return nil }
        return Session(
            url: registry.sessionURL(response.headers["location"]) ?? url,
            held: try heldBytes(response, digest) ?? 0, minimum: Self.chunkMinimum(response))
    }

    /// The session as the registry sees it now, or a new one when it is gone.
    private func refresh(_ session: Session, digest: Digest, size: Int64) async throws -> Session {
        if let now = try? await status(of: session.url, digest: digest) {
            var now = now
            now.minimum = now.minimum ?? session.minimum
            return now
        }
        journal.remove(origin: registry.host.origin, repository: registry.name.repository, digest: digest)
        return try await open(digest, size: size)
    }

    func record(_ session: Session, digest: Digest, size: Int64) throws(HaulError) {
        try journal.record(
            .init(
                origin: registry.host.origin, repository: registry.name.repository, digest: digest.description,
                size: size, location: session.parts?.next ?? session.url, parts: session.parts?.saved), digest: digest)
    }

    /// What the registry's `Range` says it holds; a number out of bounds
    /// is an error naming the registry.
    private func heldBytes(_ response: HTTPResponse, _ digest: Digest) throws(HaulError) -> Int64? {
        do { return try UploadPlan.held(fromRange: response.headers["range"], from: registry.host.origin) } catch {
            throw HaulError.push(blob: digest, "\(error)")
        }
    }

    /// The registry's `OCI-Chunk-Min-Length`: a minimum beyond any blob
    /// (or not a number) is ignored, and the registry may then refuse a
    /// chunk, which ends the push with its own words.
    static func chunkMinimum(_ response: HTTPResponse) -> Int64? {
        response.headers["oci-chunk-min-length"].flatMap { WireNumber.parse($0, in: 1...Manifest.maxBlobSize) }
    }

    static func isNetwork(_ error: HaulError) -> Bool {
        if case .network = error { return true }
        return false
    }

    static func describe(_ response: HTTPResponse) -> String {
        let text = RegistryClient.errorText(response.body)
        switch response.status {
        case 403: return "the registry refused it (403): \(text); the credentials may not allow pushing there"
        case 413: return "the registry refused it as too large (413): \(text)"
        default: return "the registry answered \(response.status): \(text)"
        }
    }
}
