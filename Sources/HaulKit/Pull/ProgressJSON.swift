import Foundation

/// Ollama's `/api/pull` NDJSON encoding of pull events (Ollama's `api/types.go` `ProgressResponse`):
/// fields in Ollama's order, `completed` omitted when 0, one object per line.
public enum ProgressJSON {
    /// The line for `event`, or nil for events Ollama has no line for.
    public static func line(for event: PullEvent) -> String? {
        switch event {
        case .progress(let p):
            var s = "{\"status\":\(quote("pulling \(p.digest.short)")),\"digest\":\(quote(p.digest.description))"
            if p.total != 0 { s += ",\"total\":\(p.total)" }
            if p.completed != 0 { s += ",\"completed\":\(p.completed)" }
            return s + "}"
        case .manifestProgress(let total, let completed):
            // Ollama's `downloadWithTransfer` progress for a list's child.
            var s = "{\"status\":\"pulling model\",\"digest\":\"sha256:model\""
            if total != 0 { s += ",\"total\":\(total)" }
            if completed != 0 { s += ",\"completed\":\(completed)" }
            return s + "}"
        case .notice, .source:
            // Haul's own: Ollama's stream has no such lines.
            return nil
        default:
            return statusText(event).map(status)
        }
    }

    /// The line `/api/push` streams for `event` (Ollama's `PushModel`: a
    /// blob the registry had is reported as pushed whole).
    public static func line(for event: PushEvent) -> String {
        func pushing(_ digest: Digest, _ total: Int64, _ completed: Int64) -> String {
            var s = "{\"status\":\(quote("pushing \(digest.short)")),\"digest\":\(quote(digest.description))"
            if total != 0 { s += ",\"total\":\(total)" }
            if completed != 0 { s += ",\"completed\":\(completed)" }
            return s + "}"
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

    private struct Wire: Decodable {
        var status: String?
        var digest: String?
        var total: Int64?
        var completed: Int64?
        var error: String?
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
    public static func error(_ message: String) -> String { "{\"error\":\(quote(message))}" }

    /// A `{"status":…}` object.
    public static func status(_ text: String) -> String { "{\"status\":\(quote(text))}" }

    /// A JSON string literal.
    public static func quote(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
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
