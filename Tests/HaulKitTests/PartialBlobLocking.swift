import Foundation
@testable import HaulKit

extension PartialBlob {
    /// Opens and locks a partial without waiting (for tests that hold one
    /// on purpose): throws if another holder has the lock.
    convenience init(path: String, digest: Digest, size: Int64, model: String,
                     durableEvery: (bytes: Int64, seconds: Double) = (64 << 20, 2.0)) throws {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw HaulError.io(operation: "open", path: path, errno: errno) }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let code = errno
            close(fd)
            throw HaulError.io(operation: "lock", path: path, errno: code)
        }
        try self.init(locked: fd, files: PartialFiles(data: path), digest: digest, size: size, model: model, durableEvery: durableEvery)
    }
}
