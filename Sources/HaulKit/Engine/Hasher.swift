internal import CShims

#if canImport(Glibc)
import Glibc
#endif

/// Owns one C hash frontier (and, in threaded mode, its thread). Confined to
/// the loop thread; `free` happens in deinit because nothing else holds it.
final class Hasher {
    let raw: OpaquePointer
    let size: Int64
    /// The last prefix announced; only the loop thread moves it, so a
    /// repeat (most poll iterations) skips the C call and its mutex.
    private var announced: Int64 = 0
    /// The file opened with O_DIRECT, for reading back bytes written past
    /// the page cache; closed after the C hasher (and its thread) is gone.
    private let directRead: DirectFile?

    /// Starts at `state` (an exported hash of a prefix) when given.
    /// `wake` is the loop's multi handle, woken when the digest is final.
    /// With `direct`, reads back bypass the page cache (`path` names the
    /// file in the trace if they cannot).
    init?(
        fd: Int32, size: Int64, mode: EngineConfiguration.HashMode, state: [UInt8]? = nil, wake: OpaquePointer? = nil,
        direct: Bool = false, path: String = ""
    ) {
        let threaded: Int32 = mode == .threaded ? 1 : 0
        let directRead = direct ? DirectFile(reopening: fd, path: path, flags: O_RDONLY) : nil
        let direct = directRead?.rawValue ?? -1
        let made =
            state.map { s in
                s.withUnsafeBufferPointer { hl_hasher_new(fd, size, threaded, $0.baseAddress, wake, direct) }
            }
            ?? hl_hasher_new(fd, size, threaded, nil, wake, direct)
        guard let h = made else { return nil }
        self.raw = h
        self.size = size
        self.directRead = directRead
        self.announced = hl_hasher_hashed(h)
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

    /// The state of the hashed prefix, for a checkpoint; nil before any byte.
    func export() -> [UInt8]? {
        var out = [UInt8](repeating: 0, count: SHA256State.size)
        let at = out.withUnsafeMutableBufferPointer { hl_hasher_export(raw, $0.baseAddress) }
        return at > 0 ? out : nil
    }

    /// The digest, once every byte has been hashed.
    var digest: Digest? {
        var out = [UInt8](repeating: 0, count: 32)
        let ok = out.withUnsafeMutableBufferPointer { hl_hasher_digest(raw, $0.baseAddress) } == 0
        return ok ? Digest(bytes: out) : nil
    }
}
