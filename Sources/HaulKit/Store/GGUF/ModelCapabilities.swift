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
    static func derive(config: [String], gguf: GGUFMetadata?, hasProjector: Bool, template: String, family: String) -> [String] {
        var out: [String] = []
        func add(_ capability: String) { if !out.contains(capability) { out.append(capability) } }
        config.forEach(add)
        if let gguf {
            add(gguf["pooling_type"] == nil ? "completion" : "embedding")
            if gguf["vision.block_count"] != nil { add("vision") }
            if gguf["audio.block_count"] != nil { add("audio") }
        }
        if hasProjector { add("vision") }
        let scan = TemplateScan(template)
        if scan.fields.contains("tools") { add("tools") }
        if scan.fields.contains("suffix") { add("insert") }
        if scan.printsThinkingBetweenTags { add("thinking") }
        if family == "gptoss" || family == "gpt-oss" { add("thinking") }
        return out
    }
}

/// The parts of a Go text/template that capabilities depend on, found by
/// walking its actions (`{{ … }}`) and the text between them.
struct TemplateScan {
    /// First identifiers of the fields the template reads, lower-cased
    /// (`.Tools` → `tools`), as Ollama's `template.Vars` reports them.
    private(set) var fields: Set<String> = []
    private(set) var printsThinkingBetweenTags = false

    init(_ template: String) {
        // Open blocks (`range`, `if`, `with`, `define`, `block`): whether each
        // is a range over .Messages, and the text since its body (or `else`) began.
        struct Block { var overMessages: Bool; var text: String }
        var blocks: [Block] = [Block(overMessages: false, text: "")]
        var pendingThinking = false
        var rest = Substring(template)
        while let open = rest.range(of: "{{") {
            let text = String(rest[..<open.lowerBound])
            if pendingThinking {
                // The tag after `{{ .Thinking }}` ends the list it is in.
                if !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { printsThinkingBetweenTags = true }
                pendingThinking = false
            }
            blocks[blocks.count - 1].text += text
            guard let close = Self.actionEnd(in: rest[open.upperBound...]) else { break }
            var action = rest[open.upperBound..<close.lowerBound]
            rest = rest[close.upperBound...]
            if action.hasPrefix("/*") { continue }
            if action.hasPrefix("-") { action = action.dropFirst() }
            if action.hasSuffix("-") { action = action.dropLast() }
            let words = Self.code(of: action)
            fields.formUnion(Self.fieldNames(in: words))
            let keyword = words.split(whereSeparator: \.isWhitespace).first.map(String.init) ?? ""
            switch keyword {
            case "range", "if", "with", "define", "block":
                blocks.append(Block(overMessages: keyword == "range" && words.contains(".Messages"), text: ""))
            case "else":
                blocks[blocks.count - 1].text = ""
            case "end":
                if blocks.count > 1 { blocks.removeLast() }
            default:
                let printsThinking = words.trimmingCharacters(in: .whitespaces) == ".Thinking"
                if printsThinking, blocks.contains(where: \.overMessages),
                   !blocks[blocks.count - 1].text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
                    pendingThinking = true
                }
            }
        }
    }

    /// Where an action ends: the first `}}` outside a quoted string.
    private static func actionEnd(in text: Substring) -> Range<Substring.Index>? {
        var quote: Character?
        var i = text.startIndex
        while i < text.endIndex {
            let c = text[i]
            if let q = quote {
                if c == "\\" && q != "`" { i = text.index(after: i) } else if c == q { quote = nil }
            } else if c == "\"" || c == "`" || c == "'" {
                quote = c
            } else if c == "}", text[text.index(after: i)...].hasPrefix("}") {
                return i..<text.index(i, offsetBy: 2)
            }
            if i < text.endIndex { i = text.index(after: i) }
        }
        return nil
    }

    /// The action without its string literals.
    private static func code(of action: Substring) -> String {
        var out = ""
        var quote: Character?
        var escaped = false
        for c in action {
            if let q = quote {
                if escaped { escaped = false } else if c == "\\" && q != "`" { escaped = true } else if c == q { quote = nil }
            } else if c == "\"" || c == "`" || c == "'" {
                quote = c
                out += " "
            } else {
                out.append(c)
            }
        }
        return out
    }

    /// Every identifier after a `.` (`.Function.Name` → `function`, `name`),
    /// as `template.Vars` collects the identifiers of field and variable
    /// chains.
    private static func fieldNames(in code: String) -> [String] {
        var out: [String] = []
        let chars = Array(code)
        var i = 0
        while i < chars.count {
            if chars[i] == ".", i + 1 < chars.count, chars[i + 1].isLetter || chars[i + 1] == "_" {
                var j = i + 1
                while j < chars.count, chars[j].isLetter || chars[j].isNumber || chars[j] == "_" { j += 1 }
                out.append(String(chars[(i + 1)..<j]).lowercased())
                i = j
            } else {
                i += 1
            }
        }
        return out
    }
}
