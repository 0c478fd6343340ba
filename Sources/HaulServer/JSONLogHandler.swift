import Foundation
import HaulKit
import Logging
import Synchronization

/// A swift-log handler that writes each record as one JSON object per line
/// to standard error (`HAUL_LOG_FORMAT=json`), for log shippers: `ts`
/// (RFC 3339, UTC), `level`, `label`, `message`, then the metadata's keys
/// (strings, numbers as strings, arrays and objects as JSON).
public struct JSONLogHandler: LogHandler {
    /// The least severe level written (`.info` by default).
    public var logLevel: Logger.Level = .info
    /// Metadata added to every record of this handler's loggers.
    public var metadata: Logger.Metadata = [:]
    /// Metadata added at each record (a task-local request id, say).
    public var metadataProvider: Logger.MetadataProvider?
    private let label: String
    private let write: @Sendable (String) -> Void

    /// A handler writing to standard error, each line in one `write`.
    public init(label: String, metadataProvider: Logger.MetadataProvider? = nil) {
        self.init(label: label, metadataProvider: metadataProvider) { line in
            FileHandle.standardError.write(Data(line.utf8))
        }
    }

    /// A handler that hands each line (with its newline) to `write`.
    public init(
        label: String, metadataProvider: Logger.MetadataProvider? = nil, write: @escaping @Sendable (String) -> Void
    ) {
        self.label = label
        self.metadataProvider = metadataProvider
        self.write = write
    }

    /// One key of `metadata`.
    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// Writes `event` as one line of JSON.
    public func log(event: LogEvent) {
        var all = metadata
        if let provided = metadataProvider?.get() { all.merge(provided) { $1 } }
        if let own = event.metadata { all.merge(own) { $1 } }
        var line = "{\"ts\":\(ProgressJSON.quote(Self.timestamp()))"
        line += ",\"level\":\(ProgressJSON.quote(event.level.rawValue))"
        line += ",\"label\":\(ProgressJSON.quote(label))"
        line += ",\"message\":\(ProgressJSON.quote(event.message.description))"
        // The record's own keys win over metadata with the same name.
        for key in all.keys.sorted() where !["ts", "level", "label", "message"].contains(key) {
            line += ",\(ProgressJSON.quote(key)):\(Self.json(all[key]!))"
        }
        write(line + "}\n")
    }

    static func json(_ value: Logger.Metadata.Value) -> String {
        switch value {
        case .string(let s): return ProgressJSON.quote(s)
        case .stringConvertible(let c): return ProgressJSON.quote(c.description)
        case .array(let a): return "[" + a.map(json).joined(separator: ",") + "]"
        case .dictionary(let d):
            return "{" + d.keys.sorted().map { "\(ProgressJSON.quote($0)):\(json(d[$0]!))" }.joined(separator: ",")
                + "}"
        }
    }

    private static func timestamp() -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: Date())
    }
}
