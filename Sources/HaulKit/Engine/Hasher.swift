internal import CShims

/// Owns one C hash frontier (and, in threaded mode, its thread). Confined to
/// the loop thread; `free` happens in deinit because nothing else holds it.
final class Hasher {
    let raw: OpaquePointer
    let size: Int64
    /// The last prefix announced; only the loop thread moves it, so a
    /// repeat (most poll iterations) skips the C call and its mutex.
    private var announced: Int64 = 0

    init?(fd: Int32, size: Int64, mode: EngineConfiguration.HashMode) {
        guard let h = hl_hasher_new(fd, size, mode == .threaded ? 1 : 0, nil) else { return nil }
        self.raw = h
        self.size = size
    }

    deinit { hl_hasher_free(raw) }

    var hashed: Int64 { hl_hasher_hashed(raw) }
    var error: Int32 { hl_hasher_error(raw) }

    func advance(to prefix: Int64) {
        guard prefix > announced else { return }
        announced = prefix
        hl_hasher_advance(raw, prefix)
    }

    /// Inline mode only: hash up to `budget` bytes of backlog now.
    func step(budget: Int) -> Int32 { hl_hasher_step(raw, budget) }

    /// The digest, once every byte has been hashed.
    var digest: Digest? {
        var out = [UInt8](repeating: 0, count: 32)
        let ok = out.withUnsafeMutableBufferPointer { hl_hasher_digest(raw, $0.baseAddress) } == 0
        return ok ? Digest(bytes: out) : nil
    }
}
