import Foundation

@testable import HaulKit

extension PartialBlob {
    /// Opens and locks a partial without waiting (for tests that hold one
    /// on purpose): throws if another holder has the lock.
    convenience init(
        path: String, digest: Digest, size: Int64, model: String,
        durableEvery: (bytes: Int64, seconds: Double) = (64 << 20, 2.0)
    ) throws {
        let fd = try FileDescriptor.open(path, O_RDWR | O_CREAT)
        guard try fd.tryLock(.exclusive) else { throw HaulError.io(operation: "lock", path: path, errno: EWOULDBLOCK) }
        try self.init(
            locked: fd, files: PartialFiles(data: path), digest: digest, size: size, model: model,
            durableEvery: durableEvery)
    }
}
