import Foundation
import HaulKit

/// A GGUF value as Ollama's `/api/show` writes it into `model_info`: Go's
/// JSON of the decoded value. A float32 is written at float32 precision
/// (1e-05, not 9.99999974737875e-06), as Go formats it; an array the reader
/// did not keep is null, as Go writes the nil slice Ollama leaves for it
/// (`fs/ggml/gguf.go` `array.MarshalJSON`).
struct ModelInfoValue: Encodable {
    let value: GGUFMetadata.Value

    func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch value {
        case .uint8(let v): try c.encode(v)
        case .int8(let v): try c.encode(v)
        case .uint16(let v): try c.encode(v)
        case .int16(let v): try c.encode(v)
        case .uint32(let v): try c.encode(v)
        case .int32(let v): try c.encode(v)
        case .uint64(let v): try c.encode(v)
        case .int64(let v): try c.encode(v)
        case .bool(let v): try c.encode(v)
        case .string(let v): try c.encode(v)
        // Go refuses to encode NaN and infinities; null keeps the rest of
        // the answer instead of failing it.
        case .float32(let v):
            if v.isFinite, let d = Decimal(string: v.description) { try c.encode(d) } else { try c.encodeNil() }
        case .float64(let v):
            if v.isFinite { try c.encode(v) } else { try c.encodeNil() }
        case .array(_, let values):
            if let values { try c.encode(values.map(ModelInfoValue.init)) } else { try c.encodeNil() }
        }
    }

    /// `model_info`: every key but `general.name` and
    /// `tokenizer.chat_template`, plus `general.parameter_count` (Ollama's
    /// `GetModelInfo` and `gguf.Decode`).
    static func modelInfo(_ metadata: GGUFMetadata?) -> [String: ModelInfoValue] {
        guard let metadata else { return [:] }
        var out: [String: ModelInfoValue] = [:]
        for (key, value) in metadata.keyValues where key != "general.name" && key != "tokenizer.chat_template" {
            out[key] = ModelInfoValue(value: value)
        }
        out["general.parameter_count"] = ModelInfoValue(value: .uint64(metadata.parameterCount))
        return out
    }
}

/// A tensor as `/api/show` lists it: name, ggml type name, shape.
struct TensorInfo: Encodable {
    let name: String
    let type: String
    let shape: [UInt64]

    init(_ tensor: GGUFMetadata.Tensor) {
        name = tensor.name
        type = Self.typeName(tensor.kind)
        shape = tensor.shape
    }

    /// `ggml_type` names (ggml's `ggml.h`, as Ollama's `fs/ggml/type.go` prints them).
    static func typeName(_ kind: UInt32) -> String {
        let names: [UInt32: String] = [
            0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 6: "Q5_0", 7: "Q5_1", 8: "Q8_0", 9: "Q8_1",
            10: "Q2_K", 11: "Q3_K", 12: "Q4_K", 13: "Q5_K", 14: "Q6_K", 15: "Q8_K",
            16: "IQ2_XXS", 17: "IQ2_XS", 18: "IQ3_XXS", 19: "IQ1_S", 20: "IQ4_NL", 21: "IQ3_S", 22: "IQ2_S",
            23: "IQ4_XS",
            24: "I8", 25: "I16", 26: "I32", 27: "I64", 28: "F64", 29: "IQ1_M", 30: "BF16", 34: "TQ1_0", 35: "TQ2_0",
            39: "MXFP4"
        ]
        return names[kind] ?? "unknown"
    }
}
