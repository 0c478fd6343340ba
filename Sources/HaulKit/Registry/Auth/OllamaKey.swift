internal import CShims
import Foundation

/// The ed25519 identity Ollama signs registry token requests with:
/// `~/.ollama/id_ed25519`, an unencrypted OpenSSH private key
/// (Ollama's `auth/auth.go`). Haul reads it, never creates it: a pull that needs
/// it without it gets an anonymous token request instead.
public struct OllamaKey: Sendable {
    let seed: [UInt8]
    let publicKey: [UInt8]

    /// `~/.ollama/id_ed25519` of this process's user.
    public static func defaultPath(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        (environment["HOME"] ?? NSHomeDirectory()) + "/.ollama/id_ed25519"
    }

    /// The key at `path`; nil when there is no file. A file that is not an
    /// unencrypted ed25519 OpenSSH key is an error that says so.
    static func load(path: String) throws(HaulError) -> OllamaKey? {
        guard FileSystem.exists(path) else { return nil }
        let bytes = try FileSystem.readFile(path, limit: 64 << 10)
        return try OllamaKey(openSSH: String(decoding: bytes, as: UTF8.self), path: path)
    }

    init(openSSH text: String, path: String) throws(HaulError) {
        func bad(_ why: String) -> HaulError { .authentication("\(path): \(why)") }
        let body = text.split(whereSeparator: \.isNewline)
            .filter { !$0.hasPrefix("-----") }.joined()
        guard text.contains("-----BEGIN OPENSSH PRIVATE KEY-----"), let data = Data(base64Encoded: body) else {
            throw bad("not an OpenSSH private key")
        }
        var r = SSHReader(Array(data))
        let magic = Array("openssh-key-v1\0".utf8)
        guard r.take(magic.count) == magic else { throw bad("not an OpenSSH private key") }
        guard let cipher = r.string(), let kdf = r.string(), r.string() != nil, let count = r.uint32() else {
            throw bad("truncated key")
        }
        guard cipher == Array("none".utf8), kdf == Array("none".utf8) else {
            throw bad("the key is encrypted; Ollama's key has no passphrase")
        }
        guard count == 1, r.string() != nil, let secret = r.string() else { throw bad("expected exactly one key") }
        var p = SSHReader(secret)
        guard let check1 = p.uint32(), let check2 = p.uint32(), check1 == check2 else {
            throw bad("corrupt private section")
        }
        guard p.string() == Array("ssh-ed25519".utf8) else { throw bad("not an ed25519 key") }
        guard let pub = p.string(), pub.count == 32, let priv = p.string(), priv.count == 64 else {
            throw bad("malformed ed25519 key")
        }
        seed = Array(priv.prefix(32))
        publicKey = pub
        var derived = [UInt8](repeating: 0, count: 32)
        guard hl_ed25519_public_key(seed, &derived) == 0, derived == pub else {
            throw bad("the public key does not match the private key")
        }
    }

    /// The public key in SSH wire format, base64: the second field of
    /// `id_ed25519.pub`, which Ollama puts before the signature.
    var publicKeyBase64: String {
        var wire: [UInt8] = []
        SSHReader.append(Array("ssh-ed25519".utf8), to: &wire)
        SSHReader.append(publicKey, to: &wire)
        return Data(wire).base64EncodedString()
    }

    func sign(_ message: [UInt8]) throws(HaulError) -> [UInt8] {
        var signature = [UInt8](repeating: 0, count: 64)
        guard hl_ed25519_sign(seed, message, message.count, &signature) == 0 else {
            throw .authentication("ed25519 signing failed")
        }
        return signature
    }

    /// Ollama's `Authorization` value for a token request to `url`
    /// (Ollama's `server/auth.go` `getAuthorizationToken`): `<public key>:<signature>` over
    /// `GET,<url>,<base64 of the hex SHA-256 of the empty body>`.
    func authorization(forTokenURL url: String) throws(HaulError) -> String {
        let emptyBodyHash = Data(Hex.encode(SHA256.hash([])).utf8).base64EncodedString()
        let signature = try sign(Array("GET,\(url),\(emptyBodyHash)".utf8))
        return publicKeyBase64 + ":" + Data(signature).base64EncodedString()
    }
}

/// SSH wire format: big-endian uint32 lengths before byte strings.
private struct SSHReader {
    let bytes: [UInt8]
    var position = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    mutating func take(_ n: Int) -> [UInt8]? {
        guard n >= 0, bytes.count - position >= n else { return nil }
        defer { position += n }
        return Array(bytes[position..<position + n])
    }

    mutating func uint32() -> UInt32? {
        take(4).map { $0.reduce(UInt32(0)) { $0 << 8 | UInt32($1) } }
    }

    mutating func string() -> [UInt8]? {
        guard let n = uint32(), n <= 1 << 20 else { return nil }
        return take(Int(n))
    }

    static func append(_ string: [UInt8], to out: inout [UInt8]) {
        let n = UInt32(string.count)
        out += [UInt8(n >> 24), UInt8(n >> 16 & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n & 0xFF)] + string
    }
}
