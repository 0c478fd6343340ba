internal import CShims

/// One-shot SHA-256 (OpenSSL) for small in-memory buffers such as manifests.
/// Blob data is hashed incrementally by the C hasher instead.
enum SHA256 {
    static func hash(_ bytes: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        bytes.withUnsafeBytes { buffer in
            out.withUnsafeMutableBufferPointer { hl_sha256(buffer.baseAddress, buffer.count, $0.baseAddress) }
        }
        return out
    }
}
