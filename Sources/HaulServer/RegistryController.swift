import Foundation
import HTTPTypes
import HaulKit
import Hummingbird

/// The distribution (Docker Registry v2) API, read-only, from the store:
/// `haul serve` as a registry for its neighbours. `ollama pull --insecure
/// node:11434/library/llama3.2`, another Haul with the node in its
/// hosts.toml, or any OCI client can pull what the node holds.
///
/// Which stored model a request means: the one of the registry named by
/// `?ns=` (what containerd and Haul send to a mirror), by default
/// `registry.ollama.ai`. A manifest not stored is pulled through first when
/// its registry is listed in `HAUL_PULL_THROUGH`.
///
/// Only registries the operator chose are served (`HaulDaemon.Node`: the
/// public ones by default); a model of another registry is unknown here,
/// even if stored. With a node token, every `/v2/` request must carry it.
struct RegistryController {
    let haul: Haul
    let pullThrough: PullThrough
    let node: HaulDaemon.Node
    /// Bytes served and pull-through results are counted here, if set.
    var metrics: DaemonMetrics? = nil

    static let apiVersion: HTTPField = HTTPField(
        name: HTTPField.Name("Docker-Distribution-Api-Version")!, value: "registry/2.0")
    static let contentDigest = HTTPField.Name("Docker-Content-Digest")!

    func addRoutes<Context: RequestContext>(to router: some RouterMethods<Context>) {
        // Hummingbird matches "/v2/" here too.
        router.get("/v2") { request, _ in
            try authorize(request)
            return Self.json("{}", status: .ok)
        }
        router.head("/v2") { request, _ in
            try authorize(request)
            return Self.json("", status: .ok)
        }
        router.get("/v2/:namespace/:model/manifests/:reference") { request, context in
            try authorize(request)
            return try await manifest(request, context, body: true)
        }
        router.head("/v2/:namespace/:model/manifests/:reference") { request, context in
            try authorize(request)
            return try await manifest(request, context, body: false)
        }
        router.get("/v2/:namespace/:model/blobs/:digest") { request, context in
            try authorize(request)
            return try await blob(request, context, body: true)
        }
        router.head("/v2/:namespace/:model/blobs/:digest") { request, context in
            try authorize(request)
            return try await blob(request, context, body: false)
        }
    }

    /// Returns when the request may go on; else throws the 401 to answer.
    private func authorize(_ request: Request) throws(RegistryError) {
        guard let token = node.token, !BearerToken.matches(request, token) else { return }
        throw RegistryError(
            .unauthorized, "UNAUTHORIZED", "authentication required", challenge: "Basic realm=\"haul\"")
    }

    /// `(registry, namespace, model)` of a request; nil when the names are
    /// not Ollama's grammar (nothing outside the store can be reached).
    private func repository(_ request: Request, _ context: some RequestContext) -> (
        host: String, namespace: String, model: String
    )? {
        let host = request.uri.queryParameters.get("ns") ?? ModelName.defaultHost
        guard node.registries.contains(host.lowercased()),
            let namespace = context.parameters.get("namespace"), let model = context.parameters.get("model"),
            let name = try? ModelName(parsing: "\(host)/\(namespace)/\(model)")
        else { return nil }
        return (name.host, name.namespace, name.model)
    }

    /// The stored models of one repository.
    private func stored(_ repo: (host: String, namespace: String, model: String)) -> [LocalModel] {
        // Stored names spell the public registry one way (`storeIdentity`).
        let host =
            ((try? ModelName(host: repo.host, namespace: repo.namespace, model: repo.model, tag: "latest"))?
            .storeIdentity.host ?? repo.host).lowercased()
        // That repository's directories alone: a request's work is bounded
        // by what it names, not by what the store holds.
        return haul.store.list(host: host, namespace: repo.namespace, model: repo.model).filter {
            $0.name.host.lowercased() == host && $0.name.namespace == repo.namespace && $0.name.model == repo.model
        }
    }

    private func manifest(_ request: Request, _ context: some RequestContext, body: Bool) async throws -> Response {
        guard let repo = repository(request, context), let reference = context.parameters.get("reference") else {
            throw RegistryError(.notFound, "NAME_UNKNOWN", "repository name not known to registry")
        }
        let served: (raw: [UInt8], mediaType: String)?
        if reference.hasPrefix("sha256:") {
            served = byDigest(reference, in: repo)
        } else {
            guard let name = try? ModelName(parsing: "\(repo.host)/\(repo.namespace)/\(repo.model):\(reference)") else {
                throw RegistryError(.notFound, "MANIFEST_UNKNOWN", "manifest unknown")
            }
            if let found = byTag(name, request: request) {
                if pullThrough.allows(repo.host) { metrics?.pullThrough("hit") }
                served = found
            } else if pullThrough.allows(repo.host) {
                try Self.refuseCrossSite(request)
                do {
                    try await pullThrough.pull(name)
                } catch HaulError.manifestNotFound {
                    metrics?.pullThrough("error")
                    throw RegistryError(.notFound, "MANIFEST_UNKNOWN", "manifest unknown")
                } catch {
                    metrics?.pullThrough("error")
                    throw RegistryError(
                        .badGateway, "UNKNOWN", "pull-through failed: \(haul.store.clientMessage(for: error))")
                }
                metrics?.pullThrough("miss")
                served = byTag(name, request: request)
            } else {
                served = nil
            }
        }
        guard let served else { throw RegistryError(.notFound, "MANIFEST_UNKNOWN", "manifest unknown") }
        var headers: HTTPFields = [.contentType: served.mediaType, .contentLength: "\(served.raw.count)"]
        headers[Self.contentDigest] = Digest(hashing: served.raw).description
        headers.append(Self.apiVersion)
        return Response(
            status: .ok, headers: headers,
            body: body ? ResponseBody(byteBuffer: ByteBuffer(bytes: served.raw)) : ResponseBody())
    }

    /// A tag's stored bytes: a manifest list as stored when the client
    /// accepts lists (Ollama ≥ 0.40 names the type in `Accept`), otherwise
    /// the child that runs here, so an older client still gets a manifest
    /// it can pull.
    private func byTag(_ name: ModelName, request: Request) -> (raw: [UInt8], mediaType: String)? {
        guard let stored = try? haul.store.storedManifest(for: name) else { return nil }
        guard case .list = stored.content else { return (stored.raw, stored.mediaType) }
        let accept = request.headers[values: .accept].joined(separator: ",")
        if accept.contains(ManifestList.mediaType) { return (stored.raw, stored.mediaType) }
        guard let runnable = try? haul.store.runnable(stored).manifest else { return nil }
        return (runnable.raw, runnable.mediaType)
    }

    /// A manifest of this repository by digest: a stored tag's bytes, or
    /// a list child's.
    private func byDigest(_ reference: String, in repo: (host: String, namespace: String, model: String)) -> (
        raw: [UInt8], mediaType: String
    )? {
        for model in stored(repo) {
            if model.id.description == reference { return (model.manifest.raw, model.manifest.mediaType) }
            if model.tagDigest.description == reference, let stored = try? haul.store.storedManifest(for: model.name),
                stored.digest == model.tagDigest
            {
                return (stored.raw, stored.mediaType)
            }
        }
        return nil
    }

    /// A tag of this repository whose stored list names `digest` as a
    /// child this store does not have, and that child's runner.
    private func absentChild(_ digest: Digest, in repo: (host: String, namespace: String, model: String)) -> (
        ModelName, String
    )? {
        for model in stored(repo) {
            guard let stored = try? haul.store.storedManifest(for: model.name), case .list(let list) = stored.content,
                let child = list.children.first(where: { $0.digest == digest && $0.isSelectable && $0.inline == nil })
            else { continue }
            return (model.name, child.runner)
        }
        return nil
    }

    private func blob(_ request: Request, _ context: some RequestContext, body: Bool) async throws -> Response {
        guard let repo = repository(request, context), let text = context.parameters.get("digest"),
            let digest = try? Digest(parsing: text)
        else {
            throw RegistryError(.notFound, "BLOB_UNKNOWN", "blob unknown to registry")
        }
        // Only blobs of this repository's stored manifests: the store is not
        // a bag of digests for anyone who can guess one.
        // Manifest blobs too (a list's children are fetched as blobs).
        func known() -> Bool {
            stored(repo).contains {
                $0.manifest.referencedDigests.contains(digest) || $0.manifestBlobs.contains { $0.digest == digest }
            }
        }
        var isKnown = known()
        if !isKnown && pullThrough.allows(repo.host) {
            await pullThrough.settle(host: repo.host, repository: repo.namespace + "/" + repo.model)
            isKnown = known()
            // A child of a list the node holds but has not pulled (a client
            // that runs on another runner asks for it): the node pulls that
            // child, so the fleet still fetches it from upstream once.
            if !isKnown, let (name, runner) = absentChild(digest, in: repo) {
                try Self.refuseCrossSite(request)
                do {
                    try await pullThrough.pull(name, runner: runner)
                } catch {
                    metrics?.pullThrough("error")
                    throw RegistryError(
                        .badGateway, "UNKNOWN", "pull-through failed: \(haul.store.clientMessage(for: error))")
                }
                metrics?.pullThrough("miss")
                isKnown = known()
            }
        }
        let path = haul.store.blobPath(digest)
        guard isKnown, let attributes = try? FileManager.default.attributesOfItem(atPath: path),
            let size = (attributes[.size] as? NSNumber)?.int64Value
        else {
            throw RegistryError(.notFound, "BLOB_UNKNOWN", "blob unknown to registry")
        }
        var headers: HTTPFields = [.contentType: "application/octet-stream", .acceptRanges: "bytes"]
        headers[Self.contentDigest] = digest.description
        headers.append(Self.apiVersion)
        var range: ClosedRange<Int64> = 0...max(0, size - 1)
        var status = HTTPResponse.Status.ok
        if let value = request.headers[.range] {
            switch ByteRange.parse(value, size: size) {
            case .whole:
                break
            case .unsatisfiable:
                headers[.contentRange] = "bytes */\(size)"
                return Response(status: .rangeNotSatisfiable, headers: headers)
            case .part(let part):
                range = part
                status = .partialContent
                headers[.contentRange] = "bytes \(part.lowerBound)-\(part.upperBound)/\(size)"
            }
        }
        let length = size == 0 ? 0 : range.upperBound - range.lowerBound + 1
        headers[.contentLength] = "\(length)"
        guard body, length > 0 else { return Response(status: status, headers: headers) }
        // Streamed in chunks from the file by NIO's thread pool: Hummingbird
        // has no sendfile path, so this is as close to zero-copy as it gets.
        let file = try await FileIO().loadFile(
            path: path, range: Int(range.lowerBound)...Int(range.upperBound), context: context)
        guard let served = metrics?.servedBytes else { return Response(status: status, headers: headers, body: file) }
        // Counted as each buffer is handed to the connection.
        return Response(
            status: status, headers: headers,
            body: file.map { buffer in
                served.increment(by: buffer.readableBytes)
                return buffer
            })
    }

    /// A browser's request from another site may not start a pull-through:
    /// a page can embed `<img src="http://node:11434/v2/…/manifests/…">`,
    /// which sends no `Origin` for the access rules to check, and make the
    /// node fetch and store whatever it names. Browsers say where a request
    /// comes from in `Sec-Fetch-Site` and how in `Sec-Fetch-Mode`;
    /// registry clients send neither, and a page of the node's own origin
    /// or a URL typed by the user (`same-origin`, `none`) is let through.
    static func refuseCrossSite(_ request: Request) throws(RegistryError) {
        let site = request.headers[HTTPField.Name("Sec-Fetch-Site")!]?.lowercased()
        let mode = request.headers[HTTPField.Name("Sec-Fetch-Mode")!]?.lowercased()
        guard site == "cross-site" || site == "same-site" || mode == "no-cors" else { return }
        throw RegistryError(.forbidden, "DENIED", "a pull-through is not started for a request from another site")
    }

    static func json(_ text: String, status: HTTPResponse.Status) -> Response {
        var headers: HTTPFields = [.contentType: "application/json; charset=utf-8"]
        headers.append(apiVersion)
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }
}

/// A refusal of the distribution API (`/v2/`), thrown by its handlers and
/// answered with the API's error document (`{"errors":[{"code","message"}]}`)
/// and its version header; a 401 names the scheme to answer with.
struct RegistryError: HTTPResponseError {
    let status: HTTPResponse.Status
    let code: String
    let message: String
    var challenge: String?

    init(_ status: HTTPResponse.Status, _ code: String, _ message: String, challenge: String? = nil) {
        (self.status, self.code, self.message, self.challenge) = (status, code, message, challenge)
    }

    private struct Document: Encodable {
        struct Entry: Encodable {
            let code: String
            let message: String
        }
        let errors: [Entry]
    }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        let body = try OrderedJSONEncoder().encodeToString(Document(errors: [.init(code: code, message: message)]))
        var response = RegistryController.json(body, status: status)
        if let challenge { response.headers[.wwwAuthenticate] = challenge }
        return response
    }
}
