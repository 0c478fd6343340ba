#if canImport(Glibc)
import Glibc
#endif

/// The SHA-256 of a file's bytes, read back with the engine's hasher (pread
/// and hash, nothing else): how stored, exported and imported blobs are
/// checked against their names.
enum FileDigest {
    /// The digest of `fd`'s first `size` bytes.
    static func of(_ fd: borrowing FileDescriptor, size: Int64) throws(HaulError) -> Digest {
        guard let hasher = Hasher(fd: fd.rawValue, size: size, mode: .inline) else {
            throw .io(operation: "hash", path: fd.path, errno: ENOMEM)
        }
        hasher.advance(to: size)
        while hasher.hashed < size {
            let err = hasher.step(budget: 64 << 20)
            if err != 0 { throw .io(operation: "read", path: fd.path, errno: err) }
        }
        guard let digest = hasher.digest else { throw .io(operation: "hash", path: fd.path, errno: EIO) }
        return digest
    }
}
