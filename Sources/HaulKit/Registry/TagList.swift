import Foundation

/// The distribution API's tag listing (`GET /v2/<name>/tags/list`), for
/// `haul copy --all-tags`: page by page (`n`, and the `Link: <…>;
/// rel="next"` the registry sends), bounded, each tag checked as a model
/// name's tag before it is used.
extension RegistryClient {
    /// At most this many tags are taken from one repository.
    static let maxTags = 10_000

    /// Every tag of the repository, in the registry's order.
    func tags() async throws -> [String] {
        var out: [String] = []
        // Seen tags, so that dropping repeats is linear (a registry may
        // repeat one tag on every page, or list 10,000 on one).
        var seen = Set<String>()
        var url = "\(host.root)/\(name.repository)/tags/list?n=1000"
        for _ in 0..<(Self.maxTags / 1000 + 1) {
            let response = try await send(request(url, headers: ["Accept: application/json"]))
            switch response.status {
            case 200: break
            case 404: throw HaulError.manifestNotFound
            default: throw HaulError.manifestStatus(response.status, body: Self.errorText(response.body))
            }
            struct Page: Decodable { var tags: [String]? }
            guard let page = try? JSONDecoder().decode(Page.self, from: Data(response.body)) else {
                throw HaulError.manifestInvalid("the registry's tag list is not JSON")
            }
            for tag in page.tags ?? [] where (try? ModelName(parsing: "\(name.host)/\(name.repository):\(tag)")) != nil
            {
                if seen.insert(tag).inserted { out.append(tag) }
                if out.count >= Self.maxTags { return out }
            }
            guard let next = Self.nextPage(response.headers["link"]).flatMap({ sessionURL($0) }) else { return out }
            url = next
        }
        return out
    }

    /// The target of `rel="next"` in a `Link` header.
    static func nextPage(_ link: String?) -> String? {
        guard let link, link.contains("rel=\"next\"") || link.contains("rel=next"),
            let open = link.firstIndex(of: "<"), let close = link[open...].firstIndex(of: ">")
        else { return nil }
        return String(link[link.index(after: open)..<close])
    }
}
