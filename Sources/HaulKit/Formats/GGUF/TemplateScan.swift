/// The parts of a Go text/template that capabilities depend on, found by
/// walking its actions (`{{ … }}`) and the text between them.
///
/// A template is untrusted (it arrives with any model), so the walk is one
/// pass over its UTF-8 bytes: every byte is looked at a bounded number of
/// times, whatever the template holds. Templates are read up to
/// `ModelContents.textLimit` (4 MiB), which this scans in tens of
/// milliseconds.
struct TemplateScan: Sendable, Equatable {
    /// First identifiers of the fields the template reads, lower-cased
    /// (`.Tools` → `tools`), as Ollama's `template.Vars` reports them.
    private(set) var fields: Set<String> = []
    private(set) var printsThinkingBetweenTags = false

    init(_ template: String) {
        let bytes = Array(template.utf8)
        // Open blocks (`range`, `if`, `with`, `define`, `block`): whether each
        // is a range over .Messages, and whether text other than white space
        // came since its body (or `else`) began.
        struct Block {
            var overMessages: Bool
            var hasText: Bool
        }
        var blocks: [Block] = [Block(overMessages: false, hasText: false)]
        // Open blocks over .Messages, counted: asking the stack at every
        // action would cost its depth each time.
        var overMessages = 0
        var pendingThinking = false
        var position = 0
        while position < bytes.count {
            let open = Self.find(bytes, from: position)
            let textHasContent = Self.containsNonSpace(bytes, position..<(open ?? bytes.count))
            if pendingThinking {
                // The tag after `{{ .Thinking }}` ends the list it is in.
                if textHasContent { printsThinkingBetweenTags = true }
                pendingThinking = false
            }
            if textHasContent { blocks[blocks.count - 1].hasText = true }
            guard let open, let close = Self.actionEnd(bytes, from: open + 2) else { break }
            position = close + 2
            var action = (open + 2)..<close
            if action.first.map({ bytes[$0] == UInt8(ascii: "-") }) == true { action = action.dropFirst() }
            if action.last.map({ bytes[$0] == UInt8(ascii: "-") }) == true { action = action.dropLast() }
            let code = Self.code(bytes[action])
            if Self.trimmed(code).starts(with: Array("/*".utf8)) { continue }
            fields.formUnion(Self.fieldNames(in: code))
            let keyword = String(decoding: Self.trimmed(code).prefix(while: { !Self.isSpace($0) }), as: UTF8.self)
            switch keyword {
            case "range", "if", "with", "define", "block":
                let block = Block(
                    overMessages: keyword == "range" && Self.contains(code, Array(".Messages".utf8)),
                    hasText: false)
                if block.overMessages { overMessages += 1 }
                blocks.append(block)
            case "else":
                blocks[blocks.count - 1].hasText = false
            case "end":
                if blocks.count > 1, blocks.removeLast().overMessages { overMessages -= 1 }
            default:
                let printsThinking = Self.trimmed(code).elementsEqual(".Thinking".utf8)
                if printsThinking, overMessages > 0, blocks[blocks.count - 1].hasText {
                    pendingThinking = true
                }
            }
        }
    }

    /// The next `{{` at or after `start`.
    private static func find(_ bytes: [UInt8], from start: Int) -> Int? {
        var i = start
        while i + 1 < bytes.count {
            if bytes[i] == UInt8(ascii: "{") && bytes[i + 1] == UInt8(ascii: "{") { return i }
            i += 1
        }
        return nil
    }

    /// Where an action ends: the first `}}` outside a quoted string.
    private static func actionEnd(_ bytes: [UInt8], from start: Int) -> Int? {
        var quote: UInt8?
        var i = start
        while i < bytes.count {
            let c = bytes[i]
            if let q = quote {
                if c == UInt8(ascii: "\\") && q != UInt8(ascii: "`") { i += 1 } else if c == q { quote = nil }
            } else if c == UInt8(ascii: "\"") || c == UInt8(ascii: "`") || c == UInt8(ascii: "'") {
                quote = c
            } else if c == UInt8(ascii: "}"), i + 1 < bytes.count, bytes[i + 1] == UInt8(ascii: "}") {
                return i
            }
            i += 1
        }
        return nil
    }

    /// The action without its string literals (each becomes one space).
    private static func code(_ action: ArraySlice<UInt8>) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(action.count)
        var quote: UInt8?
        var escaped = false
        for c in action {
            if let q = quote {
                if escaped {
                    escaped = false
                } else if c == UInt8(ascii: "\\") && q != UInt8(ascii: "`") {
                    escaped = true
                } else if c == q {
                    quote = nil
                }
            } else if c == UInt8(ascii: "\"") || c == UInt8(ascii: "`") || c == UInt8(ascii: "'") {
                quote = c
                out.append(UInt8(ascii: " "))
            } else {
                out.append(c)
            }
        }
        return out
    }

    /// Every identifier after a `.` (`.Function.Name` → `function`, `name`),
    /// as `template.Vars` collects the identifiers of field and variable
    /// chains. Bytes of multi-byte UTF-8 count as letters, as Go's
    /// identifiers take any Unicode letter.
    private static func fieldNames(in code: [UInt8]) -> [String] {
        var out: [String] = []
        var i = 0
        while i < code.count {
            if code[i] == UInt8(ascii: "."), i + 1 < code.count, isIdentifierStart(code[i + 1]) {
                var j = i + 1
                while j < code.count, isIdentifierStart(code[j]) || (code[j] >= 0x30 && code[j] <= 0x39) { j += 1 }
                out.append(String(decoding: code[(i + 1)..<j], as: UTF8.self).lowercased())
                i = j
            } else {
                i += 1
            }
        }
        return out
    }

    private static func isIdentifierStart(_ c: UInt8) -> Bool {
        (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == UInt8(ascii: "_") || c >= 0x80
    }

    private static func isSpace(_ c: UInt8) -> Bool { c == 0x20 || (c >= 0x09 && c <= 0x0D) }

    private static func containsNonSpace(_ bytes: [UInt8], _ range: Range<Int>) -> Bool {
        bytes[range].contains { !isSpace($0) }
    }

    private static func trimmed(_ code: [UInt8]) -> ArraySlice<UInt8> {
        guard let first = code.firstIndex(where: { !isSpace($0) }), let last = code.lastIndex(where: { !isSpace($0) })
        else {
            return []
        }
        return code[first...last]
    }

    /// Whether `needle` occurs in `code` (both short: one action).
    private static func contains(_ code: [UInt8], _ needle: [UInt8]) -> Bool {
        guard needle.count <= code.count else { return false }
        return (0...(code.count - needle.count)).contains { code[$0..<($0 + needle.count)].elementsEqual(needle) }
    }
}
