/// A content digest as Haul accepts it: `sha256:` and 64 lowercase hex
/// digits. Anything else (other algorithms, upper case that would alias a
/// file name, separators, NUL) is refused before it can become a path or URL.
public struct Digest: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The 64 lowercase hex digits.
    public let hex: String

    /// Reads `sha256:<64 lower-case hex digits>`; anything else is `invalidDigest`.
    public init(parsing text: String) throws(HaulError) {
        let prefix = "sha256:"
        guard text.hasPrefix(prefix) else { throw .invalidDigest(text) }
        let hex = text.dropFirst(prefix.count)
        guard hex.utf8.count == 64,
            hex.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) })
        else { throw .invalidDigest(text) }
        self.hex = String(hex)
    }

    /// From 32 raw digest bytes.
    public init(bytes: [UInt8]) {
        precondition(bytes.count == 32)
        self.hex = Hex.encode(bytes)
    }

    /// The digest of `bytes` (SHA-256), for content held in memory such as
    /// a manifest.
    public init(hashing bytes: [UInt8]) { self.init(bytes: SHA256.hash(bytes)) }

    public var description: String { "sha256:\(hex)" }
    /// Ollama's file name for the blob: `sha256-<hex>`.
    public var fileName: String { "sha256-\(hex)" }
    /// The 12 hex digits Ollama shows (`digest[7:19]`).
    public var short: String { String(hex.prefix(12)) }

    public static func < (a: Digest, b: Digest) -> Bool { a.hex < b.hex }
}
