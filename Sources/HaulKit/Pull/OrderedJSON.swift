import Foundation

/// Encodes `Encodable` values as Go's `encoding/json` writes Ollama's
/// structs: keys in the order the value encodes them (declaration order for
/// a synthesized conformance), a dictionary's keys sorted (as Go writes a
/// map), nil optionals left out (`encodeIfPresent`), slashes as they are. Foundation's `JSONEncoder` writes an object's keys
/// in an order that changes from run to run (or sorted), so a response would
/// read differently from Ollama's and from itself; this is the one JSON
/// writer of every Ollama-shaped response and line Haul sends.
package struct OrderedJSONEncoder: Sendable {
    package init() {}

    package func encode(_ value: some Encodable) throws -> Data { Data(try bytes(value)) }

    package func encodeToString(_ value: some Encodable) throws -> String {
        String(decoding: try bytes(value), as: UTF8.self)
    }

    private func bytes(_ value: some Encodable) throws -> [UInt8] {
        let root = try node(value, codingPath: [])
        var out: [UInt8] = []
        root.write(to: &out)
        return out
    }

    /// A JSON string literal, escaped as every line Haul writes escapes it:
    /// quote, backslash and control characters; everything else as is.
    package static func quote(_ text: String) -> String {
        var out: [UInt8] = []
        NodeBox.write(string: text, to: &out)
        return String(decoding: out, as: UTF8.self)
    }
}

/// A JSON value being built, in place: objects keep their keys' order.
/// Confined to the encoding that made it (never shared across threads).
final class NodeBox {
    enum Kind {
        case null
        case bool(Bool)
        case number(String)
        case string(String)
        case array
        case object
    }

    var kind: Kind
    /// An array's items (kind `.array`).
    private(set) var items: [NodeBox] = []
    /// An object's fields in the order they were encoded (kind `.object`).
    private(set) var fields: [(String, NodeBox)] = []

    init(_ kind: Kind = .null) { self.kind = kind }

    /// Makes this node an empty object, unless it is one already.
    func makeObject() {
        if case .object = kind { return }
        kind = .object
        fields = []
    }

    /// Makes this node an empty array, unless it is one already.
    func makeArray() {
        if case .array = kind { return }
        kind = .array
        items = []
    }

    func setField(_ key: String, _ value: NodeBox) {
        makeObject()
        fields.append((key, value))
    }

    func append(_ value: NodeBox) {
        makeArray()
        items.append(value)
    }

    func take(_ other: NodeBox) {
        kind = other.kind
        items = other.items
        fields = other.fields
    }

    func write(to out: inout [UInt8]) {
        switch kind {
        case .null: out += "null".utf8
        case .bool(let b): out += (b ? "true" : "false").utf8
        case .number(let n): out += n.utf8
        case .string(let s): Self.write(string: s, to: &out)
        case .array:
            out.append(UInt8(ascii: "["))
            for (i, item) in items.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                item.write(to: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object:
            out.append(UInt8(ascii: "{"))
            for (i, (key, value)) in fields.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                Self.write(string: key, to: &out)
                out.append(UInt8(ascii: ":"))
                value.write(to: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    /// A string literal: runs of bytes that need no escape are copied at
    /// once (a 4 MiB template is one run, not four million appends).
    static func write(string s: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        var text = s
        text.withUTF8 { bytes in
            var run = 0
            for (i, byte) in bytes.enumerated() where byte < 0x20 || byte == 0x22 || byte == 0x5C {
                out.append(contentsOf: bytes[run..<i])
                run = i + 1
                switch byte {
                case 0x22: out += #"\""#.utf8
                case 0x5C: out += #"\\"#.utf8
                case 0x0A: out += #"\n"#.utf8
                case 0x0D: out += #"\r"#.utf8
                case 0x09: out += #"\t"#.utf8
                default:
                    let hex = Array("0123456789abcdef".utf8)
                    out += #"\u00"#.utf8
                    out.append(hex[Int(byte >> 4)])
                    out.append(hex[Int(byte & 0xF)])
                }
            }
            out.append(contentsOf: bytes[run...])
        }
        out.append(UInt8(ascii: "\""))
    }
}

private struct OrderedEncoder: Encoder {
    let box: NodeBox
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        box.makeObject()
        return KeyedEncodingContainer(KeyedContainer<Key>(box: box, codingPath: codingPath))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        box.makeArray()
        return UnkeyedContainer(box: box, codingPath: codingPath)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer {
        SingleValueContainer(box: box, codingPath: codingPath)
    }
}

/// JSON already encoded by this encoder (a large document encoded where it
/// was read), placed as it is.
package struct JSONFragment: Encodable, Sendable {
    package let text: String

    package init(_ data: Data) { text = String(decoding: data, as: UTF8.self) }

    package func encode(to encoder: any Encoder) throws {
        // Only this encoder can place raw JSON; another gets the text as a string.
        var container = encoder.singleValueContainer()
        try container.encode(text)
    }
}

/// Scalars as Go writes them; anything else through its own `encode(to:)`.
private func node(_ value: some Encodable, codingPath: [any CodingKey]) throws -> NodeBox {
    switch value {
    case let fragment as JSONFragment: return NodeBox(.number(fragment.text))
    case let s as String: return NodeBox(.string(s))
    case let b as Bool: return NodeBox(.bool(b))
    case let i as Int: return NodeBox(.number(String(i)))
    case let i as Int64: return NodeBox(.number(String(i)))
    case let i as Int32: return NodeBox(.number(String(i)))
    case let i as Int16: return NodeBox(.number(String(i)))
    case let i as Int8: return NodeBox(.number(String(i)))
    case let i as UInt16: return NodeBox(.number(String(i)))
    case let i as UInt64: return NodeBox(.number(String(i)))
    case let i as UInt32: return NodeBox(.number(String(i)))
    case let i as UInt8: return NodeBox(.number(String(i)))
    case let i as UInt: return NodeBox(.number(String(i)))
    case let d as Double: return NodeBox(.number(try number(d, codingPath: codingPath)))
    case let f as Float: return NodeBox(.number(try number(Double(f), codingPath: codingPath)))
    // A decimal number as written (`Decimal`'s own `encode(to:)` would
    // write its fields).
    case let d as Decimal: return NodeBox(.number(d.description))
    case let map as [String: any Encodable]:
        // Go writes a map's keys sorted; a Dictionary's own order changes.
        let box = NodeBox(.object)
        for key in map.keys.sorted() {
            box.setField(key, try node(map[key]!, codingPath: codingPath + [IndexKey(stringValue: key)]))
        }
        return box
    default:
        let box = NodeBox()
        try value.encode(to: OrderedEncoder(box: box, codingPath: codingPath))
        return box
    }
}

/// A float as Go's `encoding/json` writes one: integral values without a
/// fraction, others in their shortest form; NaN and infinities are errors.
private func number(_ d: Double, codingPath: [any CodingKey]) throws -> String {
    guard d.isFinite else {
        throw EncodingError.invalidValue(d, .init(codingPath: codingPath, debugDescription: "\(d) is not JSON"))
    }
    if d == d.rounded(), abs(d) < 1e21 { return String(format: "%.0f", d) }
    return "\(d)"
}

private struct KeyedContainer<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let box: NodeBox
    let codingPath: [any CodingKey]

    mutating func encodeNil(forKey key: Key) throws { box.setField(key.stringValue, NodeBox(.null)) }

    mutating func encode(_ value: some Encodable, forKey key: Key) throws {
        box.setField(key.stringValue, try node(value, codingPath: codingPath + [key]))
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key)
        -> KeyedEncodingContainer<NestedKey>
    {
        let child = NodeBox(.object)
        box.setField(key.stringValue, child)
        return KeyedEncodingContainer(KeyedContainer<NestedKey>(box: child, codingPath: codingPath + [key]))
    }

    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        let child = NodeBox(.array)
        box.setField(key.stringValue, child)
        return UnkeyedContainer(box: child, codingPath: codingPath + [key])
    }

    mutating func superEncoder() -> any Encoder { OrderedEncoder(box: box, codingPath: codingPath) }
    mutating func superEncoder(forKey key: Key) -> any Encoder {
        let child = NodeBox()
        box.setField(key.stringValue, child)
        return OrderedEncoder(box: child, codingPath: codingPath + [key])
    }
}

private struct IndexKey: CodingKey {
    let intValue: Int?
    let stringValue: String
    init(_ index: Int) { (intValue, stringValue) = (index, "\(index)") }
    init(stringValue: String) { (intValue, self.stringValue) = (nil, stringValue) }
    init?(intValue: Int) { self.init(intValue) }
}

private struct UnkeyedContainer: UnkeyedEncodingContainer {
    let box: NodeBox
    let codingPath: [any CodingKey]
    var count: Int { box.items.count }

    mutating func encodeNil() throws { box.append(NodeBox(.null)) }

    mutating func encode(_ value: some Encodable) throws {
        box.append(try node(value, codingPath: codingPath + [IndexKey(count)]))
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type)
        -> KeyedEncodingContainer<NestedKey>
    {
        let child = NodeBox(.object)
        let path = codingPath + [IndexKey(count)]
        box.append(child)
        return KeyedEncodingContainer(KeyedContainer<NestedKey>(box: child, codingPath: path))
    }

    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        let child = NodeBox(.array)
        let path = codingPath + [IndexKey(count)]
        box.append(child)
        return UnkeyedContainer(box: child, codingPath: path)
    }

    mutating func superEncoder() -> any Encoder {
        let child = NodeBox()
        let path = codingPath + [IndexKey(count)]
        box.append(child)
        return OrderedEncoder(box: child, codingPath: path)
    }
}

private struct SingleValueContainer: SingleValueEncodingContainer {
    let box: NodeBox
    let codingPath: [any CodingKey]

    mutating func encodeNil() throws { box.kind = .null }

    mutating func encode(_ value: some Encodable) throws {
        box.take(try node(value, codingPath: codingPath))
    }
}

extension String {
    /// Go's `%q` of the text (`strconv.Quote`), for the messages Ollama
    /// words with it: in quotes, with quotes, backslashes and control
    /// characters escaped.
    package var goQuoted: String { OrderedJSONEncoder.quote(self) }
}
