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

/// An exported hash state (Go's `MarshalBinary` layout, as Ollama's
/// resumable hashing uses), which the resume journal stores.
enum SHA256State {
    static let size = Int(HL_SHA256_STATE_SIZE)

    /// The number of bytes the state has hashed; -1 if it is malformed.
    static func offset(_ state: [UInt8]) -> Int64 {
        guard state.count == size else { return -1 }
        return state.withUnsafeBufferPointer { hl_sha256_state_offset($0.baseAddress) }
    }
}
