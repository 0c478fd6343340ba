internal import CShims

/// Ollama's own upload of one blob (`server/upload.go`: `blobUpload.Prepare`,
/// `Run`, `uploadPart`), as a value that takes the registry's answers and
/// says what to send next: pure, so the order is tested without sockets.
///
/// The blob is cut into parts. Each part is `PATCH`ed to the session, in
/// order, with `X-Redirect-Uploads: 1` and its `Content-Range`. A registry
/// that plays the protocol answers `307`: `Location` is where the part's
/// bytes go (a storage URL, sent without the registry's credentials) and
/// `Docker-Upload-Location` is the session for the next part's `PATCH`. So
/// the next `PATCH` need not wait for this part's bytes, and the parts'
/// `PUT`s run side by side. A registry that answers `202` instead took the
/// bytes itself, and the parts go one after another. The closing
/// `PUT ?digest=&etag=` names the MD5 of the parts' MD5s and their count,
/// as S3 names a multipart object.
struct PartPlan: Sendable, Equatable {
    /// Ollama's `numUploadParts`: parts per blob, and parts in flight.
    static let maxParts = 16
    /// Ollama's `minUploadPartSize` and `maxUploadPartSize` (100 and 1000
    /// `format.MegaByte`, decimal).
    static let minPartSize: Int64 = 100_000_000
    static let maxPartSize: Int64 = 1_000_000_000

    /// A part's size for a blob of `size` bytes: a sixteenth, within
    /// Ollama's bounds. The registry has only ever seen these sizes from
    /// Ollama, so Haul sends the same.
    static func partSize(for size: Int64) -> Int64 {
        min(max(size / Int64(maxParts), minPartSize), maxPartSize)
    }

    enum Part: Sendable, Equatable {
        /// Not yet asked of the registry.
        case waiting
        /// Its PATCH is in flight.
        case patching
        /// The registry named where its bytes go; not sent there yet.
        case redirected(String)
        /// Its bytes are on the way to that URL.
        case sending(String)
        /// Sent whole; its MD5.
        case done([UInt8])
    }

    enum Action: Sendable, Equatable {
        /// PATCH part `part` (its range) to the session `url`.
        case patch(part: Int, url: String)
        /// PUT part `part`'s bytes to the URL the registry named.
        case put(part: Int, url: String)
        /// Close the session: `PUT url?digest=…&etag=etag`.
        case finish(url: String, etag: String)
    }

    /// The parts' byte ranges, in order.
    let ranges: [Range<Int64>]
    private(set) var parts: [Part]
    /// The session URL for the next PATCH, or for the closing PUT.
    private(set) var next: String
    /// Requests in flight at most (PATCH and PUTs together, as Ollama's
    /// `errgroup` limit counts them).
    let limit: Int

    init(size: Int64, session: String, limit: Int = PartPlan.maxParts) {
        let step = Self.partSize(for: size)
        ranges = stride(from: Int64(0), to: size, by: Int(step)).map { $0..<min($0 + step, size) }
        parts = Array(repeating: .waiting, count: ranges.count)
        next = session
        self.limit = max(1, limit)
    }

    /// The requests to start now: the next PATCH when none is in flight
    /// (each needs the session the previous one returned), PUTs of
    /// redirected parts while fewer than `limit` requests are out, and the
    /// closing PUT once every part is done.
    mutating func start() -> [Action] {
        var actions: [Action] = []
        if parts.allSatisfy({ if case .done = $0 { return true } else { return false } }) {
            return [.finish(url: next, etag: etag)]
        }
        var busy = parts.filter {
            if case .patching = $0 { return true }
            if case .sending = $0 { return true }
            return false
        }.count
        for i in parts.indices where busy < limit {
            if case .redirected(let url) = parts[i] {
                parts[i] = .sending(url)
                actions.append(.put(part: i, url: url))
                busy += 1
            }
        }
        if busy < limit, !parts.contains(.patching), let i = parts.firstIndex(of: .waiting) {
            parts[i] = .patching
            actions.append(.patch(part: i, url: next))
        }
        return actions
    }

    /// The PATCH of `part` was answered 307: its bytes go to `url`, and the
    /// next PATCH to the session `next`.
    mutating func redirected(_ part: Int, to url: String, next: String) {
        parts[part] = .redirected(url)
        self.next = next
    }

    /// The PATCH of `part` was answered 202 with the bytes taken: the
    /// registry holds the part itself.
    mutating func accepted(_ part: Int, next: String, md5: [UInt8]) {
        parts[part] = .done(md5)
        self.next = next
    }

    /// The part's bytes reached the URL the registry named.
    mutating func sent(_ part: Int, md5: [UInt8]) { parts[part] = .done(md5) }

    /// The part's request failed and is to be tried again: a PATCH at the
    /// same session URL (the registry did not move it on), a PUT at the
    /// same part URL.
    mutating func failed(_ part: Int) {
        switch parts[part] {
        case .patching: parts[part] = .waiting
        case .sending(let url): parts[part] = .redirected(url)
        default: break
        }
    }

    /// Bytes of the parts sent whole.
    var held: Int64 {
        zip(ranges, parts).reduce(0) { sum, pair in
            if case .done = pair.1 { return sum + Int64(pair.0.count) }
            return sum
        }
    }

    /// `<MD5 of the parts' MD5s>-<count>`, Ollama's closing `etag`. Only
    /// meaningful once every part is done.
    var etag: String {
        let md5s = parts.flatMap { part -> [UInt8] in
            if case .done(let md5) = part { return md5 }
            return []
        }
        return Hex.encode(Self.md5(md5s)) + "-\(parts.count)"
    }

    static func md5(_ bytes: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 16)
        _ = bytes.withUnsafeBufferPointer { hl_md5($0.baseAddress, $0.count, &out) }
        return out
    }

    /// Where a `307` sends a part's bytes, or nil when Haul will not send
    /// them there: only http(s), never plain http behind an https registry
    /// (the redirect rule of pulls, Ollama's `x/transfer/redirect.go`
    /// `validateRedirectScheme`). Addresses are checked when the connection
    /// opens, by the registry's address policy.
    static func partURL(_ target: String?, registry origin: String) -> String? {
        guard let target, !target.isEmpty else { return nil }
        if target.hasPrefix("/") && !target.hasPrefix("//") { return origin + target }
        guard let to = URLParts(target), let from = URLParts(origin) else { return nil }
        guard to.scheme == "https" || (to.scheme == "http" && from.scheme == "http") else { return nil }
        return target
    }

    /// What a journal keeps, so a rerun sends only the parts not done.
    struct Saved: Codable, Sendable, Equatable {
        var next: String
        /// Per part: the URL the registry named for it, if not done.
        var urls: [String?]
        /// Per part: its MD5 (hex), once done.
        var md5s: [String?]
    }

    /// The plan as a journal keeps it: parts in flight go back to where a
    /// rerun starts them again.
    var saved: Saved {
        Saved(
            next: next,
            urls: parts.map { part in
                switch part {
                case .redirected(let url), .sending(let url): return url
                default: return nil
                }
            },
            md5s: parts.map { part in
                if case .done(let md5) = part { return Hex.encode(md5) }
                return nil
            })
    }

    /// A plan restored from its journal, or nil when the record does not
    /// fit a blob of `size` bytes.
    init?(size: Int64, saved: Saved, limit: Int = PartPlan.maxParts) {
        self.init(size: size, session: saved.next, limit: limit)
        guard saved.urls.count == ranges.count, saved.md5s.count == ranges.count else { return nil }
        for i in ranges.indices {
            if let hex = saved.md5s[i] {
                guard let md5 = Hex.decode(hex), md5.count == 16 else { return nil }
                parts[i] = .done(md5)
            } else if let url = saved.urls[i] {
                parts[i] = .redirected(url)
            }
        }
    }
}
