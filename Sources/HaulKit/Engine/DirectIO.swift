internal import CShims

#if canImport(Glibc)
import Glibc
#endif

/// Writing past the page cache (`EngineConfiguration.directIO`).
///
/// A buffered pwrite copies every byte into a page-cache page the kernel
/// first allocates and zeroes, then writes back later: in `perf` that copy
/// is the largest single cost of a pull (`copy_folio_from_iter_atomic`).
/// With O_DIRECT the device reads the bytes from Haul's own buffer instead.
/// Curl's buffers are not aligned, so each transfer gathers its bytes in an
/// aligned stage (one copy in user space, into memory that stays mapped) and
/// writes a whole stage at a time; the hasher reads them back with O_DIRECT
/// too, since they never enter the page cache.
final class DirectFile {
    private let descriptor: FileDescriptor

    /// The file behind `fd` opened again (same inode, even if renamed since)
    /// with O_DIRECT; nil where the filesystem has no O_DIRECT (tmpfs).
    init?(reopening fd: Int32, path: String, flags: Int32) {
        do {
            descriptor = try FileDescriptor.open("/proc/self/fd/\(fd)", flags | hl_o_direct())
        } catch {
            DebugTrace.log("no O_DIRECT for \(path) (\(error)): writing through the page cache")
            return nil
        }
    }

    var rawValue: Int32 { descriptor.rawValue }
}

/// Aligned stage buffers for direct writes, reused across transfers so that
/// their pages are touched once per process, not once per piece. Confined
/// to the loop thread; at most one buffer per running transfer is out.
final class StagePool {
    let size: Int
    private var free: [UnsafeMutableRawPointer] = []

    init(size: Int) {
        // A stage is written as a whole: a multiple of the O_DIRECT alignment.
        let align = Int(HL_DIRECT_ALIGN)
        self.size = max(align, size / align * align)
    }

    func take() -> UnsafeMutableRawPointer? {
        if let buffer = free.popLast() { return buffer }
        var p: UnsafeMutableRawPointer?
        guard posix_memalign(&p, Int(HL_DIRECT_ALIGN), size) == 0 else { return nil }
        return p
    }

    func give(_ buffer: UnsafeMutableRawPointer) { free.append(buffer) }

    deinit { free.forEach { Glibc.free($0) } }
}
