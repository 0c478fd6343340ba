#if canImport(Glibc)
import Glibc
#endif

/// The metadata of a GGUF model file: its key/value section and tensor
/// descriptions, never the tensor data (what `ollama show` reports; Ollama's
/// `fs/ggml/gguf.go` `Decode`).
///
/// The file is untrusted (any registry can serve any bytes under a model
/// layer), so reading is bounded: counts are checked against the bytes left
/// in the file before anything is allocated, strings and arrays have
/// Ollama's caps, arrays are only kept up to a size the caller picks, and
/// the read never goes past the tensor descriptions.
public struct GGUFMetadata: Sendable, Equatable {
    /// A metadata value, with GGUF's type.
    public enum Value: Sendable, Equatable {
        /// GGUF type 0: `uint8`.
        case uint8(UInt8)
        /// GGUF type 1: `int8`.
        case int8(Int8)
        /// GGUF type 2: `uint16`.
        case uint16(UInt16)
        /// GGUF type 3: `int16`.
        case int16(Int16)
        /// GGUF type 4: `uint32`.
        case uint32(UInt32)
        /// GGUF type 5: `int32`.
        case int32(Int32)
        /// GGUF type 6: `float32`.
        case float32(Float)
        /// GGUF type 7: `bool`.
        case bool(Bool)
        /// GGUF type 8: a UTF-8 string.
        case string(String)
        /// GGUF type 10: `uint64`.
        case uint64(UInt64)
        /// GGUF type 11: `int64`.
        case int64(Int64)
        /// GGUF type 12: `float64`.
        case float64(Double)
        /// `values` is nil when the array was longer than the reader kept.
        case array(count: Int, values: [Value]?)
    }

    /// One tensor's description.
    public struct Tensor: Sendable, Equatable {
        /// The tensor's name (`blk.0.attn_q.weight`).
        public let name: String
        /// A `ggml_type`.
        public let kind: UInt32
        /// Elements per dimension.
        public let shape: [UInt64]
    }

    /// The GGUF version (2 or 3).
    public let version: UInt32
    /// In file order; a key that repeats keeps its last value, as Ollama's map does.
    public let keyValues: [(key: String, value: Value)]
    /// The tensors, in file order.
    public let tensors: [Tensor]
    /// The sum of the tensors' element counts (Ollama's `general.parameter_count`).
    public let parameterCount: UInt64

    public static func == (a: GGUFMetadata, b: GGUFMetadata) -> Bool {
        a.version == b.version && a.tensors == b.tensors && a.parameterCount == b.parameterCount
            && a.keyValues.elementsEqual(b.keyValues) { $0.key == $1.key && $0.value == $1.value }
    }

    /// Ollama's caps (`fs/ggml/gguf.go`).
    static let maxKeyValues: UInt64 = 1_000_000
    static let maxTensors: UInt64 = 1_000_000
    static let maxDimensions: UInt32 = 8
    static let maxStringLength: UInt64 = 16 << 20
    static let maxArrayLength: UInt64 = 10_000_000
    /// Array elements kept in memory over the whole file, whatever the
    /// caller asked: a verbose show of a hostile file stays bounded.
    static let maxKeptElements = 4_000_000

    /// The value of `key`, or of `<architecture>.key` for keys outside
    /// `general.` and `tokenizer.` (Ollama's `KV` accessors).
    public subscript(key: String) -> Value? {
        var key = key
        if !key.hasPrefix("general.") && !key.hasPrefix("tokenizer."),
            case .string(let arch)? = self["general.architecture"]
        {
            key = arch + "." + key
        }
        return keyValues.last { $0.key == key }?.value
    }

    /// Reads the metadata of the GGUF file at `path`; nil when the file is
    /// in another format (its first bytes are not GGUF's magic). Arrays
    /// longer than `keepArraysUpTo` elements are counted, not kept
    /// (Ollama's `maxArraySize`; nil keeps them all, within the caps).
    public static func read(path: String, keepArraysUpTo: Int?) throws(GGUFError) -> GGUFMetadata? {
        let file: FileDescriptor
        do {
            file = try FileDescriptor.open(path, O_RDONLY)
        } catch {
            throw GGUFError("cannot read the model file: \(error)")
        }
        let size: Int64
        do {
            size = Int64(try file.status().st_size)
        } catch {
            throw GGUFError("cannot read the model file: \(error)")
        }
        let fd = file.rawValue
        var magic = [UInt8](repeating: 0, count: 4)
        guard pread(fd, &magic, 4, 0) == 4, magic == Array("GGUF".utf8) || magic == Array("FUGG".utf8) else {
            return nil
        }
        var reader = GGUFReader(size: size) { (offset, buffer) throws(GGUFError) -> Int in
            let n = FileSystem.retrying { pread(fd, buffer.baseAddress, buffer.count, off_t(offset)) }
            if n < 0 {
                throw GGUFError(
                    "cannot read the model file: \(HaulError.io(operation: "read", path: path, errno: errno))")
            }
            return n
        }
        let metadata = try parse(&reader, keepArraysUpTo: keepArraysUpTo)
        file.close()
        return metadata
    }

    /// Parses GGUF bytes held in memory (the fuzz target's way in).
    public static func parse(_ bytes: [UInt8], keepArraysUpTo: Int?) throws(GGUFError) -> GGUFMetadata {
        var reader = GGUFReader(size: Int64(bytes.count)) { (offset, buffer) throws(GGUFError) -> Int in
            let n = min(buffer.count, bytes.count - Int(offset))
            for i in 0..<n { buffer[i] = bytes[Int(offset) + i] }
            return n
        }
        return try parse(&reader, keepArraysUpTo: keepArraysUpTo)
    }

    private static func parse(_ r: inout GGUFReader, keepArraysUpTo: Int?) throws(GGUFError) -> GGUFMetadata {
        let magic = try r.bytes(4)
        if magic == Array("FUGG".utf8) { throw GGUFError("big-endian GGUF files are not supported") }
        guard magic == Array("GGUF".utf8) else { throw GGUFError("not a GGUF file") }
        let version = try r.u32()
        if version & 0xFFFF == 0, (1...3).contains(version.byteSwapped) {
            throw GGUFError("big-endian GGUF files are not supported")
        }
        guard version == 2 || version == 3 else {
            throw GGUFError("GGUF version \(version) is not supported (versions 2 and 3 are)")
        }
        let tensorCount = try r.u64()
        let kvCount = try r.u64()
        // A key/value takes at least 13 bytes (key length, type, one byte of
        // value); a tensor description at least 24.
        guard kvCount <= maxKeyValues, kvCount <= UInt64(r.remaining) / 13 else {
            throw GGUFError("key/value count \(kvCount) does not fit the file")
        }
        guard tensorCount <= maxTensors, tensorCount <= UInt64(r.remaining) / 24 else {
            throw GGUFError("tensor count \(tensorCount) does not fit the file")
        }
        var budget = min(maxKeptElements, keepArraysUpTo ?? maxKeptElements)
        var keyValues: [(key: String, value: Value)] = []
        keyValues.reserveCapacity(Int(kvCount))
        for _ in 0..<kvCount {
            let key = try r.string()
            let type = try r.u32()
            keyValues.append((key, try value(of: type, &r, keep: keepArraysUpTo, budget: &budget)))
        }
        var tensors: [Tensor] = []
        tensors.reserveCapacity(Int(tensorCount))
        var parameters: UInt64 = 0
        for _ in 0..<tensorCount {
            let name = try r.string()
            let dimensions = try r.u32()
            guard dimensions <= maxDimensions else {
                throw GGUFError("tensor \"\(HaulError.quoted(name))\" has \(dimensions) dimensions")
            }
            var shape: [UInt64] = []
            var elements: UInt64 = 1
            for _ in 0..<dimensions {
                let d = try r.u64()
                let (product, overflow) = elements.multipliedReportingOverflow(by: d)
                guard !overflow else { throw GGUFError("tensor \"\(HaulError.quoted(name))\" has an impossible shape") }
                elements = product
                shape.append(d)
            }
            let kind = try r.u32()
            _ = try r.u64()  // offset into the data section: not read
            let (sum, overflow) = parameters.addingReportingOverflow(elements)
            guard !overflow else { throw GGUFError("the tensors' element counts overflow") }
            parameters = sum
            tensors.append(Tensor(name: name, kind: kind, shape: shape))
        }
        return GGUFMetadata(version: version, keyValues: keyValues, tensors: tensors, parameterCount: parameters)
    }

    private static func value(of type: UInt32, _ r: inout GGUFReader, keep: Int?, budget: inout Int) throws(GGUFError)
        -> Value
    {
        switch type {
        case 0: return .uint8(try r.u8())
        case 1: return .int8(Int8(bitPattern: try r.u8()))
        case 2: return .uint16(try r.u16())
        case 3: return .int16(Int16(bitPattern: try r.u16()))
        case 4: return .uint32(try r.u32())
        case 5: return .int32(Int32(bitPattern: try r.u32()))
        case 6: return .float32(Float(bitPattern: try r.u32()))
        case 7:
            let b = try r.u8()
            guard b <= 1 else { throw GGUFError("a bool holds \(b)") }
            return .bool(b == 1)
        case 8: return .string(try r.string())
        case 9: return try array(&r, keep: keep, budget: &budget)
        case 10: return .uint64(try r.u64())
        case 11: return .int64(Int64(bitPattern: try r.u64()))
        case 12: return .float64(Double(bitPattern: try r.u64()))
        default: throw GGUFError("invalid value type \(type)")
        }
    }

    private static func array(_ r: inout GGUFReader, keep: Int?, budget: inout Int) throws(GGUFError) -> Value {
        let type = try r.u32()
        let count = try r.u64()
        // Arrays of arrays are refused, as Ollama refuses them.
        let elementSize: UInt64
        switch type {
        case 0, 1, 7: elementSize = 1
        case 2, 3: elementSize = 2
        case 4, 5, 6: elementSize = 4
        case 8, 10, 11, 12: elementSize = 8
        default: throw GGUFError("invalid array type \(type)")
        }
        guard count <= maxArrayLength, count <= UInt64(r.remaining) / elementSize else {
            throw GGUFError("array length \(count) does not fit the file")
        }
        let n = Int(count)
        let kept = (keep.map { n <= $0 } ?? true) && n <= budget
        guard kept else {
            if type == 8 {
                for _ in 0..<n { try r.skipString() }
            } else {
                try r.skip(count * elementSize)
            }
            return .array(count: n, values: nil)
        }
        budget -= n
        var values: [Value] = []
        values.reserveCapacity(n)
        var unused = 0
        for _ in 0..<n { values.append(try value(of: type, &r, keep: nil, budget: &unused)) }
        return .array(count: n, values: values)
    }
}

/// Why a model file's metadata could not be read.
public struct GGUFError: Error, Sendable, Equatable, CustomStringConvertible {
    public let description: String
    init(_ message: String) { description = "invalid GGUF: " + message }
}

/// Little-endian reads through a 64 KiB window over a source of bytes,
/// each bounded by the source's size.
struct GGUFReader {
    /// Fills the buffer from an offset; returns the bytes read.
    typealias Source = (Int64, UnsafeMutableBufferPointer<UInt8>) throws(GGUFError) -> Int

    let size: Int64
    private let source: Source
    private var window: [UInt8] = []
    private var at = 0
    private(set) var offset: Int64 = 0

    init(size: Int64, source: @escaping Source) {
        self.size = size
        self.source = source
    }

    var remaining: Int64 { size - offset }

    mutating func bytes(_ n: Int) throws(GGUFError) -> [UInt8] {
        guard Int64(n) <= remaining else { throw GGUFError("the file ends inside its metadata") }
        var out: [UInt8] = []
        out.reserveCapacity(n)
        while out.count < n {
            if at == window.count { try refill() }
            let take = min(n - out.count, window.count - at)
            out.append(contentsOf: window[at..<(at + take)])
            at += take
            offset += Int64(take)
        }
        return out
    }

    mutating func skip(_ n: UInt64) throws(GGUFError) {
        guard n <= UInt64(remaining) else { throw GGUFError("the file ends inside its metadata") }
        offset += Int64(n)
        let inWindow = Int64(window.count - at)
        if Int64(n) <= inWindow {
            at += Int(n)
        } else {
            window = []
            at = 0
        }
    }

    private mutating func refill() throws(GGUFError) {
        var chunk = [UInt8](repeating: 0, count: Int(min(64 << 10, remaining)))
        let n = try chunk.withUnsafeMutableBufferPointer { (buffer) throws(GGUFError) -> Int in
            try source(offset, buffer)
        }
        guard n > 0 else { throw GGUFError("the file ends inside its metadata") }
        window = Array(chunk[0..<n])
        at = 0
    }

    mutating func u8() throws(GGUFError) -> UInt8 { try bytes(1)[0] }
    mutating func u16() throws(GGUFError) -> UInt16 { UInt16(try little(2)) }
    mutating func u32() throws(GGUFError) -> UInt32 { UInt32(try little(4)) }
    mutating func u64() throws(GGUFError) -> UInt64 { try little(8) }

    private mutating func little(_ n: Int) throws(GGUFError) -> UInt64 {
        try bytes(n).reversed().reduce(0) { $0 << 8 | UInt64($1) }
    }

    mutating func string() throws(GGUFError) -> String {
        let length = try u64()
        guard length <= GGUFMetadata.maxStringLength else { throw GGUFError("a string of \(length) bytes") }
        return String(decoding: try bytes(Int(length)), as: UTF8.self)
    }

    mutating func skipString() throws(GGUFError) {
        let length = try u64()
        guard length <= GGUFMetadata.maxStringLength else { throw GGUFError("a string of \(length) bytes") }
        try skip(length)
    }
}
