import Foundation

/// Ollama's `/api/pull` and `/api/push` NDJSON lines (Ollama's
/// `api/types.go` `ProgressResponse`): `status`, `digest`, `total`,
/// `completed` in that order, numbers left out when 0, one object per line.
/// Written by `OrderedJSONEncoder`, read back by `parse`.
public enum ProgressJSON {
    /// The line for `event` in `haul pull --json`: Ollama's line, or Haul's
    /// own for a blob's source (`{"status":"source","digest":…,"host":…}`);
    /// with `model`, the line names it first (for output that mixes several
    /// pulls). Nil for events with no line.
    public static func line(for event: PullEvent, model: String?) -> String? {
        var wire: Wire
        if case .source(let digest, let host) = event {
            wire = Wire(status: "source", digest: digest.description)
            wire.host = host
        } else {
            guard let ollama = self.wire(for: event) else { return nil }
            wire = ollama
        }
        wire.model = model
        return wire.text
    }

    /// The `{"error":…}` line of `haul pull --json`, naming `model` first
    /// when given.
    public static func error(_ message: String, model: String?) -> String {
        var wire = Wire(error: message)
        wire.model = model
        return wire.text
    }

    /// The line for `event`, or nil for events Ollama has no line for.
    public static func line(for event: PullEvent) -> String? { wire(for: event)?.text }

    private static func wire(for event: PullEvent) -> Wire? {
        switch event {
        case .progress(let p):
            return Wire(
                status: "pulling \(p.digest.short)", digest: p.digest.description, total: p.total,
                completed: p.completed)
        case .manifestProgress(let total, let completed):
            // Ollama's `downloadWithTransfer` progress for a list's child.
            return Wire(status: "pulling model", digest: "sha256:model", total: total, completed: completed)
        case .notice, .source:
            // Haul's own: Ollama's stream has no such lines.
            return nil
        default:
            return statusText(event).map { Wire(status: $0) }
        }
    }

    /// The line `/api/push` streams for `event` (Ollama's `PushModel`: a
    /// blob the registry had is reported as pushed whole).
    public static func line(for event: PushEvent) -> String {
        func pushing(_ digest: Digest, _ total: Int64, _ completed: Int64) -> String {
            Wire(status: "pushing \(digest.short)", digest: digest.description, total: total, completed: completed).text
        }
        switch event {
        case .retrievingManifest: return status("retrieving manifest")
        case .manifestMissing: return status("couldn't retrieve manifest")
        case .pushing(let digest, let total, let completed): return pushing(digest, total, completed)
        case .present(let digest, let total, _): return pushing(digest, total, total)
        case .pushingManifest: return status("pushing manifest")
        case .success: return status("success")
        }
    }

    /// The status text of events that are a plain status line.
    public static func statusText(_ event: PullEvent) -> String? {
        switch event {
        case .pullingManifest: return "pulling manifest"
        case .verifying: return "verifying sha256 digest"
        case .writingManifest: return "writing manifest"
        case .removingUnusedLayers: return "removing unused layers"
        case .status(let text), .notice(let text): return text
        case .success: return "success"
        case .plan, .resuming, .progress, .source, .manifestProgress: return nil
        }
    }

    /// What a line of an `/api/pull` stream says.
    public enum Line: Sendable, Equatable {
        /// A line that is a pull event.
        case event(PullEvent)
        /// An `{"error": …}` line: the pull failed with this message.
        case error(String)
    }

    /// One line as Ollama's struct declares it, both ways: written by
    /// `OrderedJSONEncoder` (fields in this order, nil ones left out), read
    /// by `parse`.
    struct Wire: Codable {
        /// Haul's own, for `haul pull --json` of several models at once.
        var model: String?
        var status: String?
        var digest: String?
        var total: Int64?
        var completed: Int64?
        /// Haul's own: where a blob came from (`status` "source").
        var host: String?
        var error: String?

        /// A progress or status line; numbers of 0 are left out.
        init(status: String, digest: String? = nil, total: Int64 = 0, completed: Int64 = 0) {
            self.status = status
            self.digest = digest
            self.total = total == 0 ? nil : total
            self.completed = completed == 0 ? nil : completed
        }

        init(error: String) { self.error = error }

        /// What a server's line is read for: Ollama's fields only. Haul's
        /// own (`model`, `host`) are written, never read, so a server that
        /// sends them with other types still has its lines understood.
        private enum ReadKeys: String, CodingKey { case status, digest, total, completed, error }

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: ReadKeys.self)
            status = try c.decodeIfPresent(String.self, forKey: .status)
            digest = try c.decodeIfPresent(String.self, forKey: .digest)
            total = try c.decodeIfPresent(Int64.self, forKey: .total)
            completed = try c.decodeIfPresent(Int64.self, forKey: .completed)
            error = try c.decodeIfPresent(String.self, forKey: .error)
        }

        var text: String {
            // Strings and integers only: nothing here can fail to encode.
            (try? OrderedJSONEncoder().encodeToString(self)) ?? "{}"
        }
    }

    /// Reads one line of an `/api/pull` stream (the inverse of `line(for:)`;
    /// any status Haul does not model becomes `.status`). Nil for a line
    /// that says nothing, such as an empty one.
    public static func parse(_ line: some Collection<UInt8>) throws(HaulError) -> Line? {
        guard line.contains(where: { $0 != 0x20 && $0 != 0x0D && $0 != 0x09 }) else { return nil }
        guard let wire = try? JSONDecoder().decode(Wire.self, from: Data(line)) else {
            throw .network(
                url: "/api/pull",
                message: "unreadable line in the server's stream: "
                    + HaulError.quoted(String(decoding: line, as: UTF8.self)))
        }
        if let error = wire.error { return .error(error) }
        guard let status = wire.status else { return nil }
        if status == "pulling model" && wire.digest == "sha256:model" {
            let total = min(max(wire.total ?? 0, 0), Manifest.maxBlobSize)
            return .event(.manifestProgress(total: total, completed: min(max(wire.completed ?? 0, 0), total)))
        }
        if let text = wire.digest, let digest = try? Digest(parsing: text), status.hasPrefix("pulling ") {
            // A daemon is another program: its numbers are checked like a
            // registry's, so a broken one cannot crash the progress bars.
            let total = wire.total ?? 0
            guard (0...Manifest.maxBlobSize).contains(total) else {
                throw .network(
                    url: "/api/pull", message: "the server sent an impossible size \(total) for \(digest.short)")
            }
            let completed = min(max(wire.completed ?? 0, 0), total)
            return .event(
                .progress(BlobProgress(digest: digest, total: total, completed: completed, hashed: completed)))
        }
        let known: [PullEvent] = [.pullingManifest, .verifying, .writingManifest, .removingUnusedLayers, .success]
        return .event(known.first { statusText($0) == status } ?? .status(status))
    }

    /// The `{"error":…}` object Ollama ends a failed stream with.
    public static func error(_ message: String) -> String {
        Wire(error: message).text
    }

    /// A `{"status":…}` object.
    public static func status(_ text: String) -> String { Wire(status: text).text }

    /// A JSON string literal.
    @available(*, deprecated, message: "encode an Encodable value; Go's %q is String.goQuoted")
    public static func quote(_ text: String) -> String { OrderedJSONEncoder.quote(text) }
}

/// Splits a byte stream into lines, holding at most `limit` bytes of an
/// unfinished one: a server that never sends a newline gets an error, not
/// all of this process's memory.
public struct LineSplitter: Sendable {
    /// The longest line accepted, in bytes.
    public let limit: Int
    private var pending: [UInt8] = []

    /// A splitter that refuses lines longer than `limit` bytes.
    public init(limit: Int = 1 << 20) { self.limit = limit }

    /// The complete lines `data` finishes, without their newlines.
    public mutating func feed(_ data: some Collection<UInt8>) throws(HaulError) -> [[UInt8]] {
        pending.append(contentsOf: data)
        var lines: [[UInt8]] = []
        var start = 0
        while let newline = pending[start...].firstIndex(of: 0x0A) {
            lines.append(Array(pending[start..<newline]))
            start = newline + 1
        }
        pending.removeFirst(start)
        guard pending.count <= limit else {
            throw .network(url: "/api/pull", message: "the server sent a line longer than \(limit) bytes")
        }
        return lines
    }

    /// What is left after the last newline (the body of an error reply).
    public var rest: [UInt8] { pending }
}
