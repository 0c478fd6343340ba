/// What a model can do, derived the way Ollama derives it for `/api/show`
/// (`server/images.go` `(*Model).Capabilities`), in Ollama's order:
///
/// 1. the config blob's own `capabilities`;
/// 2. from the GGUF: `embedding` when `<arch>.pooling_type` is set, else
///    `completion`; `vision` for `<arch>.vision.block_count`, `audio` for
///    `<arch>.audio.block_count`;
/// 3. `vision` for a projector layer;
/// 4. from the Go template: `tools` when it reads `.Tools`, `insert` for
///    `.Suffix` (`template.Vars`), `thinking` when it prints `.Thinking`
///    between tags inside `range .Messages` (`thinking.InferTags`);
/// 5. `thinking` for the gpt-oss family.
///
/// A model layer that is not GGUF (another format) adds nothing in step 2.
enum ModelCapabilities {
    /// What step 2 reads of a GGUF file: three keys, kept per blob so a
    /// listing need not read the file again.
    struct GGUFFacts: Sendable, Equatable {
        var pooling: Bool
        var vision: Bool
        var audio: Bool

        init(_ metadata: GGUFMetadata) {
            pooling = metadata["pooling_type"] != nil
            vision = metadata["vision.block_count"] != nil
            audio = metadata["audio.block_count"] != nil
        }
    }

    /// What step 4 reads of a template: three answers, kept per blob (the
    /// scan's whole field list can be as long as the template).
    struct TemplateFacts: Sendable, Equatable {
        var readsTools = false
        var readsSuffix = false
        var printsThinking = false

        init() {}

        init(_ scan: TemplateScan) {
            readsTools = scan.fields.contains("tools")
            readsSuffix = scan.fields.contains("suffix")
            printsThinking = scan.printsThinkingBetweenTags
        }
    }

    static func derive(config: [String], gguf: GGUFMetadata?, hasProjector: Bool, template: String, family: String)
        -> [String]
    {
        derive(
            config: config, gguf: gguf.map(GGUFFacts.init), hasProjector: hasProjector,
            template: TemplateFacts(TemplateScan(template)), family: family)
    }

    static func derive(config: [String], gguf: GGUFFacts?, hasProjector: Bool, template: TemplateFacts, family: String)
        -> [String]
    {
        var out: [String] = []
        func add(_ capability: String) { if !out.contains(capability) { out.append(capability) } }
        config.forEach(add)
        if let gguf {
            add(gguf.pooling ? "embedding" : "completion")
            if gguf.vision { add("vision") }
            if gguf.audio { add("audio") }
        }
        if hasProjector { add("vision") }
        if template.readsTools { add("tools") }
        if template.readsSuffix { add("insert") }
        if template.printsThinking { add("thinking") }
        if family == "gptoss" || family == "gpt-oss" { add("thinking") }
        return out
    }
}
