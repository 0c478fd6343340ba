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
        let line = Line(
            ts: Self.timestamp(), level: event.level.rawValue, label: label, message: event.message.description,
            metadata: all)
        // Strings only: nothing in a line can fail to encode.
        write(((try? OrderedJSONEncoder().encodeToString(line)) ?? "{}") + "\n")
    }

    /// One line: the record's own keys first, then the metadata's, sorted
    /// (the record's own win over metadata of the same name).
    private struct Line: Encodable {
        let ts: String
        let level: String
        let label: String
        let message: String
        let metadata: Logger.Metadata

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: Key.self)
            for (key, value) in [("ts", ts), ("level", level), ("label", label), ("message", message)] {
                try container.encode(value, forKey: Key(key))
            }
            for key in metadata.keys.sorted() where !["ts", "level", "label", "message"].contains(key) {
                try container.encode(Value(metadata[key]!), forKey: Key(key))
            }
        }
    }

    /// A metadata value as JSON: strings, arrays, objects with sorted keys.
    private struct Value: Encodable {
        let value: Logger.Metadata.Value

        init(_ value: Logger.Metadata.Value) { self.value = value }

        func encode(to encoder: any Encoder) throws {
            switch value {
            case .string(let s):
                var container = encoder.singleValueContainer()
                try container.encode(s)
            case .stringConvertible(let c):
                var container = encoder.singleValueContainer()
                try container.encode(c.description)
            case .array(let items):
                var container = encoder.unkeyedContainer()
                for item in items { try container.encode(Value(item)) }
            case .dictionary(let d):
                var container = encoder.container(keyedBy: Key.self)
                for key in d.keys.sorted() { try container.encode(Value(d[key]!), forKey: Key(key)) }
            }
        }
    }

    private struct Key: CodingKey {
        let stringValue: String
        var intValue: Int? { nil }
        init(_ key: String) { stringValue = key }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    private static func timestamp() -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: Date())
    }
}
