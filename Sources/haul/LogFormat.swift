import Foundation
import HaulServer
import Logging

/// `HAUL_LOG_FORMAT`: `json` writes one JSON object per log record to
/// standard error (`JSONLogHandler`); `text` (or anything else set) swift-
/// log's plain lines, also to standard error. `haul serve` logs either
/// way (text by default); `haul pull` only when it is set, so its own
/// progress output stays as it was.
enum LogFormat {
    static func logger(_ environment: [String: String], whenUnset fallback: Bool) -> Logger? {
        let format = environment["HAUL_LOG_FORMAT"]?.lowercased()
        guard format != nil || fallback else { return nil }
        if format == "json" { return Logger(label: "haul") { JSONLogHandler(label: $0) } }
        return Logger(label: "haul") { StreamLogHandler.standardError(label: $0) }
    }
}
