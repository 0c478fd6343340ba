import Foundation
import HaulKit
import Hummingbird

/// The rest of the model surface an Ollama pull client touches:
/// `GET /api/tags`, `POST /api/show`, `DELETE /api/delete` (Ollama's
/// `server/routes.go`: `ListHandler`, `ShowHandler`, `DeleteHandler`).
///
/// What a model's blobs say is read once per blob (`ModelFacts`) and off
/// Swift's cooperative pool, so a hostile model (a 4 MiB template, a licence
/// listed 4,000 times) neither stalls other requests nor repeats its cost
/// on every poll of `/api/tags`.
struct ModelController {
    let haul: Haul
    let facts: ModelFacts
    let writes: WriteGuard

    func addRoutes<Context: RequestContext>(to router: some RouterMethods<Context>) {
        router.get("/api/tags") { _, _ in try await tags() }
        router.head("/api/tags") { _, _ in Response(status: .ok) }
        router.post("/api/show") { request, _ in try await show(request) }
        router.delete("/api/delete") { request, _ in try await delete(request) }
    }

    struct Tags: GoJSONResponse {
        struct Model: Encodable {
            let name: String
            let model: String
            let modified_at: String
            let size: Int64
            let digest: String
            let capabilities: [String]?
            let details: ModelDetails
        }
        let models: [Model]
    }

    /// Every stored model, newest first, with Ollama's fields: `digest` is
    /// the manifest's SHA-256 in hex, `size` the sum of its blobs;
    /// `capabilities` as `/api/show` derives them (none for a model whose
    /// files cannot be read).
    func tags() async throws(APIError) -> Tags {
        let store = haul.store
        let listing: [(model: LocalModel, summary: ModelFacts.Summary)]
        do {
            listing = try await facts.listing(of: store)
        } catch {
            throw APIError(status: .internalServerError, message: store.clientMessage(for: error))
        }
        return Tags(
            models: listing.map { model, summary in
                // Ollama ≥ 0.40 names each row's runner: the manifest's or its
                // list entry's, else the default for the weights' format
                // (`server/model_list_cache.go` `buildModelListSummary`).
                var details = summary.details
                let runner = model.runner.isEmpty ? Runner.forModelFormat(details.format) : model.runner
                details.runner = runner.isEmpty ? nil : runner
                return Tags.Model(
                    name: model.name.displayShortest, model: model.name.displayShortest,
                    modified_at: Timestamp.rfc3339(model.modified), size: model.size, digest: model.id.hex,
                    capabilities: summary.capabilities?.isEmpty == false ? summary.capabilities : nil,
                    details: details)
            })
    }

    private struct NameBody: Decodable, NamesModel {
        var model: String?
        var name: String?
        var verbose: Bool?
        /// Which child of a manifest list to show (Ollama ≥ 0.40).
        var runner: String?
        /// A show of every child present (Ollama ≥ 0.40).
        var all_manifests: Bool?
    }

    /// One child of a list, as `/api/show` summarizes it (Ollama's
    /// `api.ManifestSummary`).
    struct ManifestSummary: Encodable {
        let digest: String
        let runner: String?
        let format: String?
        let selected: Bool?
    }

    struct Show: GoJSONResponse {
        let license: String?
        let modelfile: String
        let parameters: String?
        let template: String?
        let system: String?
        let details: ModelDetails
        let model_info: [String: ModelInfoValue]
        let tensors: [TensorInfo]?
        let capabilities: [String]
        let modified_at: String
        let manifests: [ManifestSummary]?
    }

    func show(_ request: Request) async throws(APIError) -> Response {
        let body = try await OllamaRequestDecoder.decode(NameBody.self, from: request)
        let (asked, name, verbose) = try modelName(of: body)
        var runner: String?
        if let requested = body.runner, !requested.trimmingCharacters(in: .whitespaces).isEmpty {
            // Ollama's `normalizeRunner` in `ShowHandler`: 400 for an unknown one.
            guard let normalized = Runner.normalize(requested) else {
                throw .badRequest(HaulError.unknownRunner(requested).description)
            }
            runner = normalized
        }
        let store = haul.store
        if body.all_manifests == true {
            // Ollama's `GetAllManifestsInfo`.
            if runner != nil { throw .badRequest("runner cannot be used with all_manifests") }
            return try await showAll(name, asked: asked, verbose: verbose).encoded()
        }
        do {
            // Ollama keeps no array unless asked to be verbose (`getModelData`).
            // The read stops at the tensor descriptions: the metadata only.
            // The body is encoded where it was read, off the pool.
            let body = try await facts.show(name, in: store, runner: runner, keepArraysUpTo: verbose ? nil : 0) {
                model, contents, metadata, capabilities in
                try GoJSON.encode(Self.show(model, contents, metadata, capabilities, store: store))
            }
            return JSONResponse.bytes(body)
        } catch {
            throw APIError(error, store: store, asked: asked)
        }
    }

    /// `all_manifests`: a show of every child present, each with its
    /// runner (Ollama's `ShowManifestsResponse`: `ShowManifest` embeds
    /// `ShowResponse`), and the children's licences together; a plain
    /// manifest is one element. Children are shown by runner, which Ollama
    /// keeps unique within a list (`create --list`).
    private func showAll(_ name: ModelName, asked: String, verbose: Bool) async throws(APIError) -> ShowManifests {
        let store = haul.store
        let children = store.localChildren(of: name)
        var entries: [Data] = []
        var licenses: [String] = []
        do {
            for child in children.isEmpty ? [nil] : children.map(Optional.some) {
                let (entry, texts) = try await facts.show(
                    name, in: store, runner: child?.runner, keepArraysUpTo: verbose ? nil : 0
                ) {
                    model, contents, metadata, capabilities in
                    let show = Self.show(model, contents, metadata, capabilities, store: store)
                    return (
                        try GoJSON.encode(ShowManifest(runner: model.runner.isEmpty ? nil : model.runner, show: show)),
                        contents.licenses
                    )
                }
                entries.append(entry)
                for text in texts where !licenses.contains(text) { licenses.append(text) }
            }
        } catch {
            throw APIError(error, store: store, asked: asked)
        }
        return ShowManifests(
            manifests: entries.map(JSONFragment.init),
            license: licenses.isEmpty ? nil : licenses.joined(separator: "\n"))
    }

    /// Ollama's `ShowManifestsResponse`. Each show was encoded where it was
    /// read, off the pool, and is placed as it is.
    struct ShowManifests: GoJSONResponse {
        let manifests: [JSONFragment]
        let license: String?
    }

    /// One model's `/api/show` answer.
    private static func show(
        _ model: LocalModel, _ contents: ModelContents, _ metadata: GGUFMetadata?, _ capabilities: [String],
        store: ModelStore
    ) -> Show {
        let licenses = contents.licenses + (contents.unreadTextNote.map { ["[\($0)]"] } ?? [])
        return Show(
            license: licenses.isEmpty ? nil : licenses.joined(separator: "\n"),
            modelfile: contents.modelfile,
            parameters: contents.parameters.isEmpty ? nil : contents.parametersText,
            template: contents.template.isEmpty ? nil : contents.template,
            system: contents.system.isEmpty ? nil : contents.system,
            details: contents.details, model_info: ModelInfoValue.modelInfo(metadata),
            tensors: metadata.map { $0.tensors.map(TensorInfo.init) },
            capabilities: capabilities,
            modified_at: Timestamp.rfc3339(model.modified),
            manifests: Self.summaries(of: model, in: store))
    }

    /// A show with its runner among the show's own fields, in one object
    /// (Go's embedded struct).
    struct ShowManifest: Encodable {
        let runner: String?
        let show: Show

        enum Keys: String, CodingKey { case runner }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: Keys.self)
            try container.encodeIfPresent(runner, forKey: .runner)
            try show.encode(to: encoder)
        }
    }

    /// Deletes the manifest and the blobs no other model uses; 200 with an
    /// empty body, as Ollama answers.
    func delete(_ request: Request) async throws(APIError) -> Response {
        try writes.authorize(request)
        let (asked, name, _) = try await modelName(in: request)
        do {
            // Deleting waits for the store's deletion lock: off the
            // cooperative pool.
            try await haul.remove(name)
            return Response(status: .ok)
        } catch {
            throw APIError(error, store: haul.store, asked: asked)
        }
    }

    /// The children of a list present here, when there is a choice (two or
    /// more; Ollama's `manifestSummariesForShow`), the shown one selected.
    static func summaries(of model: LocalModel, in store: ModelStore) -> [ManifestSummary]? {
        let children = store.localChildren(of: model.name)
        guard children.count >= 2 else { return nil }
        return children.map {
            ManifestSummary(
                digest: $0.digest.description, runner: $0.runner.isEmpty ? nil : $0.runner,
                format: $0.format.isEmpty ? nil : $0.format, selected: $0.digest == model.id ? true : nil)
        }
    }

    /// The name as the client wrote it (Ollama's errors quote it so) and
    /// as parsed.
    private func modelName(in request: Request) async throws(APIError) -> (String, ModelName, verbose: Bool) {
        try modelName(of: try await OllamaRequestDecoder.decode(NameBody.self, from: request))
    }

    private func modelName(of body: NameBody) throws(APIError) -> (String, ModelName, verbose: Bool) {
        // ShowHandler's words; DeleteHandler's `modelref.ErrModelRequired` says the same.
        if body.modelName.trimmingCharacters(in: .whitespaces).isEmpty { throw .badRequest("model is required") }
        guard let name = try? ModelName(parsing: body.modelName) else {
            throw .badRequest("name \(String(body.modelName.prefix(256)).goQuoted) is invalid")
        }
        return (body.modelName, name, body.verbose ?? false)
    }
}

enum Timestamp {
    /// Go's `time.Time` JSON form (RFC 3339 with fractional seconds), in UTC.
    static func rfc3339(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: date)
    }
}
