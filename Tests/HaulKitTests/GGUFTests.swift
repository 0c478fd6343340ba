import Foundation
import HaulTestSupport
import Testing

@testable import HaulKit

/// GGUF bytes for tests, little-endian, as llama.cpp's writer lays them out.
struct GGUFBuilder {
    var bytes: [UInt8] = []

    init(version: UInt32 = 3, tensors: UInt64 = 0, keyValues: UInt64) {
        bytes = Array("GGUF".utf8)
        u32(version)
        u64(tensors)
        u64(keyValues)
    }

    mutating func u32(_ v: UInt32) { bytes += withUnsafeBytes(of: v.littleEndian, Array.init) }
    mutating func u64(_ v: UInt64) { bytes += withUnsafeBytes(of: v.littleEndian, Array.init) }
    mutating func string(_ s: String) {
        u64(UInt64(s.utf8.count))
        bytes += Array(s.utf8)
    }

    mutating func key(_ k: String, string v: String) {
        string(k)
        u32(8)
        string(v)
    }
    mutating func key(_ k: String, u32 v: UInt32) {
        string(k)
        u32(4)
        u32(v)
    }
    mutating func key(_ k: String, f32 v: Float) {
        string(k)
        u32(6)
        u32(v.bitPattern)
    }
    mutating func key(_ k: String, strings: [String]) {
        string(k)
        u32(9)
        u32(8)
        u64(UInt64(strings.count))
        strings.forEach { string($0) }
    }
    mutating func key(_ k: String, u32s: [UInt32]) {
        string(k)
        u32(9)
        u32(4)
        u64(UInt64(u32s.count))
        u32s.forEach { u32($0) }
    }
    mutating func tensor(_ name: String, kind: UInt32, shape: [UInt64]) {
        string(name)
        u32(UInt32(shape.count))
        shape.forEach { u64($0) }
        u32(kind)
        u64(0)
    }
}

struct GGUFTests {
    static func sample(tensors: Bool = true) -> [UInt8] {
        var b = GGUFBuilder(tensors: tensors ? 2 : 0, keyValues: 6)
        b.key("general.architecture", string: "llama")
        b.key("general.name", string: "tiny")
        b.key("llama.context_length", u32: 4096)
        b.key("llama.attention.layer_norm_rms_epsilon", f32: 1e-5)
        b.key("tokenizer.ggml.tokens", strings: ["<s>", "</s>", "a"])
        b.key("tokenizer.ggml.token_type", u32s: [])
        if tensors {
            b.tensor("token_embd.weight", kind: 0, shape: [64, 8])
            b.tensor("blk.0.attn_q.weight", kind: 12, shape: [64, 64])
        }
        return b.bytes + [UInt8](repeating: 0xAB, count: 64)  // tensor data, never read
    }

    @Test func readsKeysArraysAndTensorsNotTheirData() throws {
        let all = try GGUFMetadata.parse(Self.sample(), keepArraysUpTo: nil)
        #expect(all.version == 3 && all.keyValues.count == 6)
        #expect(all["context_length"] == .uint32(4096), "architecture-qualified, as Ollama's accessors")
        #expect(all["general.name"] == .string("tiny"))
        #expect(all["attention.layer_norm_rms_epsilon"] == .float32(1e-5))
        #expect(
            all["tokenizer.ggml.tokens"] == .array(count: 3, values: [.string("<s>"), .string("</s>"), .string("a")]))
        #expect(all.tensors.map(\.name) == ["token_embd.weight", "blk.0.attn_q.weight"])
        #expect(all.parameterCount == 64 * 8 + 64 * 64)

        // Not verbose: a non-empty array is counted, not kept; an empty one is kept.
        let counted = try GGUFMetadata.parse(Self.sample(), keepArraysUpTo: 0)
        #expect(counted["tokenizer.ggml.tokens"] == .array(count: 3, values: nil))
        #expect(counted["tokenizer.ggml.token_type"] == .array(count: 0, values: []))
    }

    @Test func readsAFileThroughItsWindow() throws {
        let dir = TempDir("haul-gguf")
        // A chat template longer than the 64 KiB read window.
        var b = GGUFBuilder(keyValues: 2)
        b.key("general.architecture", string: "qwen2")
        b.key("tokenizer.chat_template", string: String(repeating: "{{ tools }}", count: 10_000))
        FileManager.default.createFile(atPath: dir.sub("m.gguf"), contents: Data(b.bytes))
        let read = try #require(try GGUFMetadata.read(path: dir.sub("m.gguf"), keepArraysUpTo: 0))
        #expect(read["tokenizer.chat_template"] == .string(String(repeating: "{{ tools }}", count: 10_000)))
        // Another format is not GGUF, and not an error.
        FileManager.default.createFile(atPath: dir.sub("other"), contents: Data("safetensors…".utf8))
        #expect(try GGUFMetadata.read(path: dir.sub("other"), keepArraysUpTo: 0) == nil)
    }

    @Test(
        arguments: [
            (
                "big-endian",
                {
                    var b = Array("GGUF".utf8)
                    b += [0, 0, 0, 3] + [UInt8](repeating: 0, count: 16)
                    return b
                }(), "big-endian GGUF files are not supported"
            ),
            ("FUGG", Array("FUGG".utf8) + [UInt8](repeating: 0, count: 20), "big-endian GGUF files are not supported"),
            (
                "v1", GGUFBuilder(version: 1, keyValues: 0).bytes,
                "GGUF version 1 is not supported (versions 2 and 3 are)"
            ),
            (
                "kv count", GGUFBuilder(keyValues: 1_000_000_000).bytes,
                "key/value count 1000000000 does not fit the file"
            ),
            (
                "tensor count", GGUFBuilder(tensors: 1 << 40, keyValues: 0).bytes,
                "tensor count 1099511627776 does not fit the file"
            ),
            (
                "string",
                {
                    var b = GGUFBuilder(keyValues: 1)
                    b.u64(1 << 40)
                    return b.bytes + [UInt8](repeating: 0, count: 16)
                }(), "a string of 1099511627776 bytes"
            ),
            (
                "array",
                {
                    var b = GGUFBuilder(keyValues: 1)
                    b.string("k")
                    b.u32(9)
                    b.u32(4)
                    b.u64(1 << 30)
                    return b.bytes
                }(), "array length 1073741824 does not fit the file"
            ),
            (
                "nested",
                {
                    var b = GGUFBuilder(keyValues: 1)
                    b.string("k")
                    b.u32(9)
                    b.u32(9)
                    b.u64(1)
                    return b.bytes + [0, 0, 0, 0, 0, 0, 0, 0]
                }(), "invalid array type 9"
            ),
            (
                "type",
                {
                    var b = GGUFBuilder(keyValues: 1)
                    b.string("k")
                    b.u32(13)
                    return b.bytes + [0]
                }(), "invalid value type 13"
            ),
            ("truncated", Array(GGUFTests.sample().prefix(120)), "the file ends inside its metadata"),
            (
                "dims",
                {
                    var b = GGUFBuilder(tensors: 1, keyValues: 0)
                    b.tensor("t", kind: 0, shape: [UInt64](repeating: 1, count: 9))
                    return b.bytes
                }(), "tensor \"t\" has 9 dimensions"
            ),
            (
                "overflow",
                {
                    var b = GGUFBuilder(tensors: 1, keyValues: 0)
                    b.tensor("t", kind: 0, shape: [1 << 40, 1 << 40])
                    return b.bytes
                }(), "tensor \"t\" has an impossible shape"
            ),
            ("not gguf", Array("GGML and more bytes here".utf8), "not a GGUF file")
        ] as [(String, [UInt8], String)])
    func hostileFilesAreRefusedClearly(label: String, bytes: [UInt8], message: String) {
        #expect(throws: GGUFError("" + message)) { try GGUFMetadata.parse(bytes, keepArraysUpTo: nil) }
    }

    @Test func capabilitiesAreDerivedAsOllamaDerivesThem() throws {
        func caps(
            _ keys: [(String, UInt32)] = [], template: String = "", projector: Bool = false, config: [String] = [],
            family: String = ""
        ) throws -> [String] {
            var b = GGUFBuilder(keyValues: UInt64(1 + keys.count))
            b.key("general.architecture", string: "arch")
            for (k, v) in keys { b.key(k, u32: v) }
            return ModelCapabilities.derive(
                config: config, gguf: try GGUFMetadata.parse(b.bytes, keepArraysUpTo: 0),
                hasProjector: projector, template: template, family: family)
        }
        #expect(try caps() == ["completion"])
        #expect(try caps([("arch.pooling_type", 1)]) == ["embedding"])
        #expect(try caps([("pooling_type", 1)]) == ["completion"], "only the architecture's key counts")
        #expect(
            try caps([("arch.vision.block_count", 24), ("arch.audio.block_count", 2)]) == [
                "completion", "vision", "audio"
            ])
        #expect(try caps(projector: true) == ["completion", "vision"])
        #expect(
            try caps(template: "{{ if .Tools }}{{ range .Tools }}{{ .Function.Name }}{{ end }}{{ end }}") == [
                "completion", "tools"
            ])
        #expect(try caps(template: "<PRE>{{ .Prompt }}<SUF>{{ .Suffix }}<MID>") == ["completion", "insert"])
        #expect(try caps(template: #"{{ "{{ .Tools }}" }}"#) == ["completion"], "a string is not a field")
        #expect(try caps(config: ["image"]) == ["image", "completion"])
        #expect(try caps(family: "gptoss") == ["completion", "thinking"])
        #expect(ModelCapabilities.derive(config: [], gguf: nil, hasProjector: false, template: "", family: "") == [])
    }

    @Test func thinkingIsATagWrappedThinkingInsideTheMessages() {
        func thinks(_ template: String) -> Bool { TemplateScan(template).printsThinkingBetweenTags }
        #expect(
            thinks(
                "{{ range .Messages }}{{ if .Thinking }}<think>{{ .Thinking }}</think>{{ end }}{{ .Content }}{{ end }}")
        )
        #expect(
            thinks(
                "{{- range $i, $m := .Messages }}{{- if $m.Thinking }}<think>\n{{- .Thinking -}}\n</think>{{ end }}{{ end }}"
            ))
        #expect(!thinks("<think>{{ .Thinking }}</think>"), "outside range .Messages")
        #expect(
            !thinks("{{ range .Messages }}{{ if .Thinking }}{{ .Thinking }}{{ end }}{{ end }}"), "no tags around it")
        #expect(!thinks("{{ range .Tools }}<think>{{ .Thinking }}</think>{{ end }}"))
        #expect(!thinks("{{ range .Messages }}{{ if .Thinking }}thinking{{ end }}{{ end }}"), "read, not printed")
    }

    /// A template is scanned in one pass: 4 MiB of actions, of `{{.Thinking}}`
    /// inside `range .Messages`, or of nested blocks, each takes one pass
    /// (the old scan took minutes to an hour on these).
    @Test(.timeLimit(.minutes(1))) func hostileTemplatesAreScannedInOnePass() {
        let thinking = "{{range .Messages}}" + String(repeating: "a{{.Thinking}}", count: (4 << 20) / 15) + "{{end}}"
        #expect(TemplateScan(thinking).printsThinkingBetweenTags)
        let actions = String(repeating: "{{.X}}", count: (4 << 20) / 7)
        #expect(TemplateScan(actions).fields == ["x"])
        let nested = String(repeating: "{{range .Messages}}b", count: (4 << 20) / 22) + "{{.Thinking}}</t>"
        #expect(TemplateScan(nested).printsThinkingBetweenTags)
        let unclosed = "{{ \"" + String(repeating: "}}", count: 2 << 20)
        #expect(TemplateScan(unclosed).fields.isEmpty)
    }
}
