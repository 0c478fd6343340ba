/// Ollama's `/api/pull` NDJSON encoding of pull events (reference §5.2):
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
        default:
            return statusText(event).map(status)
        }
    }

    /// The status text of events that are a plain status line.
    public static func statusText(_ event: PullEvent) -> String? {
        switch event {
        case .pullingManifest: return "pulling manifest"
        case .verifying: return "verifying sha256 digest"
        case .writingManifest: return "writing manifest"
        case .success: return "success"
        case .plan, .resuming, .progress: return nil
        }
    }

    public static func error(_ message: String) -> String { "{\"error\":\(quote(message))}" }

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
