/// One challenge of a `WWW-Authenticate` header (RFC 9110 §11.6.1):
/// a scheme and its parameters, e.g.
/// `Bearer realm="https://auth.example/token",service="registry",scope="repository:a/b:pull"`.
public struct AuthChallenge: Sendable, Equatable {
    /// Lower-cased: schemes are case-insensitive.
    public let scheme: String
    /// Parameter names lower-cased (case-insensitive too); values unquoted.
    public let parameters: [String: String]
    /// A token68 credential hint instead of parameters, if any.
    public let token68: String?

    /// A parameter of the challenge (`realm`, `service`, `scope`), by name in any case.
    public subscript(_ name: String) -> String? { parameters[name.lowercased()] }

    /// A header is limited to this many bytes; registries send a few hundred.
    static let maxHeaderBytes = 16 << 10

    /// Every challenge in `header`, in order. Handles several challenges in
    /// one header, quoted and unquoted values, commas and escaped quotes
    /// inside quotes, and optional whitespace around `=`. A part that does
    /// not parse ends the list rather than being guessed at.
    public static func parse(_ header: String) -> [AuthChallenge] {
        var s = Scanner(Array(header.utf8.prefix(maxHeaderBytes)))
        var out: [AuthChallenge] = []
        s.skipSeparators()
        while out.count < 32, let scheme = s.token() {
            var parameters: [String: String] = [:]
            var token68: String?
            var malformed = false
            var atNextScheme = false
            s.skipSpaces()
            let start = s.position
            if let t = s.token68(), s.atEndOfElement {
                token68 = t
            } else {
                s.position = start
                // Comma-separated auth-params, until a token that is not
                // followed by "=": the next challenge's scheme.
                while true {
                    let mark = s.position
                    guard let name = s.token() else { break }
                    s.skipSpaces()
                    guard s.peek == 0x3D else {
                        s.position = mark
                        atNextScheme = true
                        break
                    }
                    guard let value = s.parameterValue() else {
                        malformed = true
                        break
                    }
                    if parameters[name.lowercased()] == nil { parameters[name.lowercased()] = value }
                    s.skipSpaces()
                    guard s.peek == 0x2C else { break }
                    s.skipSeparators()
                }
            }
            out.append(AuthChallenge(scheme: scheme.lowercased(), parameters: parameters, token68: token68))
            if malformed { break }
            s.skipSpaces()
            guard atNextScheme || s.atEnd || s.peek == 0x2C else { break }
            s.skipSeparators()
        }
        return out
    }

    private static func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 }

    private struct Scanner {
        let bytes: [UInt8]
        var position = 0

        init(_ bytes: [UInt8]) { self.bytes = bytes }

        var atEnd: Bool { position >= bytes.count }
        var peek: UInt8? { atEnd ? nil : bytes[position] }
        mutating func advance() { position += 1 }

        mutating func skip(while predicate: (UInt8) -> Bool) {
            while let b = peek, predicate(b) { position += 1 }
        }

        mutating func skipSpaces() { skip(while: AuthChallenge.isSpace) }

        /// Commas and spaces between list elements (empty elements allowed).
        mutating func skipSeparators() { skip { $0 == 0x2C || AuthChallenge.isSpace($0) } }

        /// Only spaces remain before the end or the next comma.
        var atEndOfElement: Bool {
            var i = position
            while i < bytes.count, AuthChallenge.isSpace(bytes[i]) { i += 1 }
            return i == bytes.count || bytes[i] == 0x2C
        }

        /// RFC 9110 tchar+.
        mutating func token() -> String? {
            let start = position
            skip(while: Self.isTokenChar)
            return position > start ? String(decoding: bytes[start..<position], as: UTF8.self) : nil
        }

        mutating func token68() -> String? {
            let start = position
            skip { b in Self.isAlnum(b) || b == 0x2D || b == 0x2E || b == 0x5F || b == 0x7E || b == 0x2B || b == 0x2F }
            skip { $0 == 0x3D }
            return position > start ? String(decoding: bytes[start..<position], as: UTF8.self) : nil
        }

        /// `= value` where value is a token or a quoted-string.
        mutating func parameterValue() -> String? {
            guard peek == 0x3D else { return nil }
            advance()
            skipSpaces()
            if peek == 0x22 { return quoted() }
            // RFC 7235 wants a token here; registries have been seen to send
            // bare URLs, so read up to the next separator instead.
            let start = position
            skip { $0 != 0x2C && !AuthChallenge.isSpace($0) }
            return position > start ? String(decoding: bytes[start..<position], as: UTF8.self) : nil
        }

        mutating func quoted() -> String? {
            advance()
            var out: [UInt8] = []
            while let b = peek {
                advance()
                switch b {
                case 0x22: return String(decoding: out, as: UTF8.self)
                case 0x5C:
                    guard let escaped = peek else { return nil }
                    out.append(escaped)
                    advance()
                default:
                    out.append(b)
                }
            }
            return nil  // unterminated
        }

        static func isAlnum(_ b: UInt8) -> Bool {
            (0x30...0x39).contains(b) || (0x41...0x5A).contains(b) || (0x61...0x7A).contains(b)
        }

        static func isTokenChar(_ b: UInt8) -> Bool {
            isAlnum(b) || "!#$%&'*+-.^_`|~".utf8.contains(b)
        }
    }
}
