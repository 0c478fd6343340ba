/// Ollama's own encoding of a manifest, byte for byte as Go's
/// `encoding/json` writes Ollama's `manifest.Manifest` and `manifest.Layer`
/// (`manifest/manifest.go` `MarshalJSON`, `manifest/layer.go`).
///
/// It matters for one thing: an inline child of a manifest list has no
/// digest of its own, and Ollama names it by the SHA-256 of this encoding
/// (`ChildManifestDigest`). Garbage collection keeps a blob under that name
/// alive, so Haul has to compute the same name to keep the same blobs.
enum GoManifestJSON {
    /// A layer as Ollama's `manifest.Layer` decodes it: every field
    /// optional on the way in, written back in Go's field order.
    struct Layer: Decodable, Sendable {
        var mediaType: String?
        var digest: String?
        var size: Int64?
        var from: String?
        var name: String?

        var encoded: String {
            var out = "{\"mediaType\":" + quote(mediaType ?? "")
            out += ",\"digest\":" + quote(digest ?? "")
            out += ",\"size\":" + String(size ?? 0)
            if let from, !from.isEmpty { out += ",\"from\":" + quote(from) }
            if let name, !name.isEmpty { out += ",\"name\":" + quote(name) }
            return out + "}"
        }
    }

    /// The encoding of an inline list child (a full manifest): schema
    /// version, media type, config, layers (`null` when absent, as Go
    /// writes a nil slice), then `runner` and `format` when not empty.
    static func inlineChild(
        schemaVersion: Int, mediaType: String, config: Layer?, layers: [Layer]?,
        runner: String, format: String
    ) -> [UInt8] {
        var out = "{\"schemaVersion\":" + String(schemaVersion)
        out += ",\"mediaType\":" + quote(mediaType)
        out += ",\"config\":" + (config ?? Layer()).encoded
        if let layers {
            out += ",\"layers\":[" + layers.map(\.encoded).joined(separator: ",") + "]"
        } else {
            out += ",\"layers\":null"
        }
        if !runner.isEmpty { out += ",\"runner\":" + quote(runner) }
        if !format.isEmpty { out += ",\"format\":" + quote(format) }
        return Array((out + "}").utf8)
    }

    /// A string as Go's `encoding/json` writes it with HTML escaping on
    /// (the default of `json.Marshal`): `<`, `>`, `&`, U+2028 and U+2029 as
    /// `\u` escapes; `\b`, `\f`, `\n`, `\r`, `\t` short (Go 1.22 and later);
    /// other control characters as `\u00XX`.
    static func quote(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "<", ">", "&", "\u{2028}", "\u{2029}":
                out += "\\u" + hex4(scalar.value)
            default:
                if scalar.value < 0x20 { out += "\\u" + hex4(scalar.value) } else { out.unicodeScalars.append(scalar) }
            }
        }
        return out + "\""
    }

    private static func hex4(_ value: UInt32) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }
}
