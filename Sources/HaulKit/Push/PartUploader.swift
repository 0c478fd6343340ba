import Foundation

/// Ollama's upload of one blob in parts, against a registry that takes
/// uploads that way (`PartPlan` has the protocol): the session's PATCHes
/// go one at a time, in order; the parts' bytes go, side by side, to the
/// URLs the registry answers with. Every request's outcome is journaled,
/// so a rerun after a kill sends only the parts that were not done, to the
/// URLs the registry gave for them.
extension BlobUploader {
    /// Why a parts session is given up for a new one (the registry lost
    /// it, or a part's URL stopped working); the blob starts over.
    private struct Restart: Error { let reason: String }

    private enum PartResult: Sendable {
        case patch(Int, Result<HTTPResponse, any Error>)
        case put(Int, Result<HTTPResponse, any Error>)
    }

    func uploadInParts(
        _ digest: Digest, size: Int64, fd: Int32, session: Session,
        progress: @Sendable (Int64) -> Void
    ) async throws -> Outcome {
        var session = session
        let resumedAt = session.parts?.held ?? 0
        var failures = 0
        while true {
            do {
                try await sendParts(
                    digest, size: size, fd: fd, session: &session, failures: &failures, progress: progress)
                journal.remove(origin: registry.host.origin, repository: registry.name.repository, digest: digest)
                journal.remember(origin: registry.host.origin, repository: registry.name.repository, digest: digest)
                progress(size)
                return .sent(resumedAt: resumedAt)
            } catch let restart as Restart {
                failures += 1
                guard failures <= retryLimit else { throw HaulError.push(blob: digest, restart.reason) }
                journal.remove(origin: registry.host.origin, repository: registry.name.repository, digest: digest)
                try await Task.sleep(for: .milliseconds(250 << min(failures, 5)))
                session = try await open(digest, size: size)
                if session.parts == nil {
                    session.parts = PartPlan(size: size, session: session.url)
                    try record(session, digest: digest, size: size)
                }
                if size > 0 { progress(0) }
            }
        }
    }

    private func sendParts(
        _ digest: Digest, size: Int64, fd: Int32, session: inout Session,
        failures: inout Int, progress: @Sendable (Int64) -> Void
    ) async throws {
        guard var plan = session.parts else { return }
        // Parts of an earlier run: the registry may hold a different story.
        let restored = plan.parts.contains { $0 != .waiting }
        if plan.held < size { progress(plan.held) }
        let registry = self.registry
        let origin = registry.host.origin
        try await withThrowingTaskGroup(of: PartResult.self) { group in
            while true {
                try Task.checkCancellation()
                for action in plan.start() {
                    switch action {
                    case .finish(let url, let etag):
                        // Every part is done, so nothing is in flight.
                        try await finish(digest, url: url, etag: etag, restored: restored)
                        return
                    case .patch(let part, let url):
                        let range = plan.ranges[part]
                        // `Expect: 100-continue` for every part: a registry
                        // that redirects answers before the bytes are sent.
                        let request = registry.request(
                            url, method: "PATCH", body: .file(fd: fd, range: range, md5: true),
                            headers: [
                                "Content-Type: application/octet-stream", "X-Redirect-Uploads: 1",
                                "Content-Range: \(range.lowerBound)-\(range.upperBound - 1)", "Expect: 100-continue"
                            ])
                        group.addTask {
                            do { return .patch(part, .success(try await registry.send(request))) } catch {
                                return .patch(part, .failure(error))
                            }
                        }
                    case .put(let part, let url):
                        // Storage, not the registry: none of the registry's
                        // credentials or headers, and its address policy.
                        let sameOrigin =
                            URLParts(url).flatMap { to in URLParts(origin).map { to.sameOrigin($0) } } ?? false
                        let request = HTTPRequest(
                            url: url, method: "PUT", body: .file(fd: fd, range: plan.ranges[part], md5: true),
                            headers: ["Content-Type: application/octet-stream"], limit: 1 << 20,
                            tls: sameOrigin ? registry.tls : nil, addressPolicy: registry.addressPolicy)
                        let engine = registry.engine
                        group.addTask {
                            do { return .put(part, .success(try await engine.fetch(request))) } catch {
                                return .put(part, .failure(error))
                            }
                        }
                    }
                }
                guard let result = try await group.next() else { return }
                switch result {
                case .patch(let part, .success(let response)):
                    try await patched(part, response, plan: &plan, digest: digest, failures: &failures)
                case .put(let part, .success(let response)):
                    try await putDone(part, response, plan: &plan, digest: digest, failures: &failures)
                case .patch(let part, .failure(let error)), .put(let part, .failure(let error)):
                    guard let haul = error as? HaulError, Self.isNetwork(haul), !AddressPolicy.isRefusal(haul) else {
                        if AddressPolicy.isRefusal(error) {
                            throw HaulError.push(blob: digest, "part \(part + 1): \(error)")
                        }
                        throw error
                    }
                    try await retry(part, plan: &plan, digest: digest, failures: &failures, why: "\(haul)")
                }
                session.parts = plan
                try record(session, digest: digest, size: size)
                // `completed == total` is reported once, when the registry
                // has closed the upload.
                if plan.held < size { progress(plan.held) }
            }
        }
    }

    /// The registry's answer to a part's PATCH.
    private func patched(
        _ part: Int, _ response: HTTPResponse, plan: inout PartPlan, digest: Digest, failures: inout Int
    ) async throws {
        let next = registry.sessionURL(response.headers["docker-upload-location"] ?? response.headers["location"])
        switch response.status {
        case 307:
            guard let session = registry.sessionURL(response.headers["docker-upload-location"]) else {
                throw HaulError.push(
                    blob: digest,
                    "the registry redirected part \(part + 1) without the session's next "
                        + "Docker-Upload-Location on its own host")
            }
            let target = response.redirectURL ?? response.headers["location"]
            guard let url = PartPlan.partURL(target, registry: registry.host.origin) else {
                throw HaulError.push(
                    blob: digest,
                    "the registry sent part \(part + 1) to \(HaulError.quoted(target ?? "(nowhere)")): "
                        + "refused (only http(s), and never plain http behind an https registry)")
            }
            plan.redirected(part, to: url, next: session)
        case 202, 201, 204:
            // The registry took the bytes itself (it does not redirect).
            guard let md5 = response.bodyMD5 else {
                throw Restart(reason: "the registry accepted part \(part + 1) before it was sent")
            }
            plan.accepted(part, next: next ?? plan.next, md5: md5)
            failures = 0
        case 404, 416:
            throw Restart(reason: "the registry lost the upload session (\(response.status))")
        case let status where status == 429 || status >= 500:
            try await retry(part, plan: &plan, digest: digest, failures: &failures, why: Self.describe(response))
        default:
            throw HaulError.push(blob: digest, Self.describe(response))
        }
    }

    /// The storage's answer to a part's bytes.
    private func putDone(
        _ part: Int, _ response: HTTPResponse, plan: inout PartPlan, digest: Digest, failures: inout Int
    ) async throws {
        switch response.status {
        case 200, 201, 204:
            guard let md5 = response.bodyMD5 else {
                throw Restart(reason: "part \(part + 1) was answered before it was sent")
            }
            plan.sent(part, md5: md5)
            failures = 0
        case let status where status == 429 || status >= 500:
            try await retry(
                part, plan: &plan, digest: digest, failures: &failures,
                why: "the storage answered \(status): \(RegistryClient.errorText(response.body))")
        default:
            // An expired or refused part URL: only the registry can name a
            // new one, in a new session.
            throw Restart(
                reason:
                    "part \(part + 1): the storage answered \(response.status): \(RegistryClient.errorText(response.body))"
            )
        }
    }

    private func retry(_ part: Int, plan: inout PartPlan, digest: Digest, failures: inout Int, why: String) async throws
    {
        plan.failed(part)
        failures += 1
        guard failures <= retryLimit else { throw HaulError.push(blob: digest, "part \(part + 1): \(why)") }
        try await Task.sleep(for: .milliseconds(250 << min(failures, 5)))
    }

    /// The closing `PUT ?digest=&etag=` (Ollama's `blobUpload.Run`).
    private func finish(_ digest: Digest, url: String, etag: String, restored: Bool) async throws {
        let separator = url.contains("?") ? "&" : "?"
        var failures = 0
        while true {
            let response: HTTPResponse
            do {
                response = try await registry.send(
                    registry.request(
                        url + separator + "digest=\(digest)&etag=\(etag)", method: "PUT",
                        headers: ["Content-Type: application/octet-stream"]))
            } catch let error as HaulError where Self.isNetwork(error) {
                failures += 1
                guard failures <= retryLimit else { throw HaulError.push(blob: digest, "\(error)") }
                try await Task.sleep(for: .milliseconds(250 << min(failures, 5)))
                continue
            }
            switch response.status {
            case 200, 201, 204:
                if let said = response.headers["docker-content-digest"], let got = try? Digest(parsing: said),
                    got != digest
                {
                    throw HaulError.push(blob: digest, "the registry stored it as \(got)")
                }
                return
            case 404:
                throw Restart(reason: "the registry lost the upload session (404)")
            case 400 where restored:
                // Parts of a killed run that the registry does not hold
                // as the journal says: one fresh session settles it.
                throw Restart(reason: "the registry refused the parts: \(RegistryClient.errorText(response.body))")
            case 400:
                throw HaulError.push(
                    blob: digest,
                    "the registry refused it: \(RegistryClient.errorText(response.body)) "
                        + "(if the bytes do not match the digest, run 'haul verify --repair')")
            case let status where status == 429 || status >= 500:
                failures += 1
                guard failures <= retryLimit else { throw HaulError.push(blob: digest, Self.describe(response)) }
                try await Task.sleep(for: .milliseconds(250 << min(failures, 5)))
            default:
                throw HaulError.push(blob: digest, Self.describe(response))
            }
        }
    }
}
