#if canImport(Glibc)
import Glibc
#endif

/// The tar (ustar) files `haul export` writes and `haul import` reads: only
/// directories and regular files, names under 100 bytes, sizes past 8 GiB
/// in GNU's base-256 form (which Go's archive/tar, and so skopeo, reads).
/// Reading refuses anything else, and any name that would leave the
/// directory it is extracted into.
enum TarArchive {
    static let block = 512

    /// One header block.
    static func header(name: String, size: Int64, directory: Bool) -> [UInt8] {
        var h = [UInt8](repeating: 0, count: block)
        func put(_ text: String, at offset: Int, width: Int) {
            for (i, byte) in text.utf8.prefix(width).enumerated() { h[offset + i] = byte }
        }
        func octal(_ value: Int64, at offset: Int, width: Int) {
            put(String(String(value, radix: 8).suffix(width - 1)).leftPadded(width - 1), at: offset, width: width - 1)
        }
        put(name, at: 0, width: 100)
        octal(directory ? 0o755 : 0o644, at: 100, width: 8)
        octal(0, at: 108, width: 8)
        octal(0, at: 116, width: 8)
        if size < 0o77777777777 {
            octal(size, at: 124, width: 12)
        } else {
            h[124] = 0x80
            for i in 0..<8 { h[135 - i] = UInt8(truncatingIfNeeded: size >> (8 * Int64(i))) }
        }
        octal(0, at: 136, width: 12)
        h[156] = directory ? UInt8(ascii: "5") : UInt8(ascii: "0")
        put("ustar\0", at: 257, width: 6)
        put("00", at: 263, width: 2)
        for i in 148..<156 { h[i] = 0x20 }
        let sum = h.reduce(0) { $0 + Int64($1) }
        put(String(String(sum, radix: 8)).leftPadded(6) + "\0 ", at: 148, width: 8)
        return h
    }

    struct Entry {
        let name: String
        let size: Int64
        let directory: Bool
        /// Where the entry's data starts in the archive.
        let offset: Int64
    }

    /// The entries of the archive `fd`, checked: regular files and
    /// directories only, relative names without `..`.
    static func entries(_ fd: borrowing FileDescriptor) throws(HaulError) -> [Entry] {
        let total = Int64(try fd.status().st_size)
        var entries: [Entry] = []
        var at: Int64 = 0
        var h = [UInt8](repeating: 0, count: block)
        while at + Int64(block) <= total {
            let n = h.withUnsafeMutableBytes { pread(fd.rawValue, $0.baseAddress, block, off_t(at)) }
            guard n == block else { throw .io(operation: "read", path: fd.path, errno: EIO) }
            if h.allSatisfy({ $0 == 0 }) { return entries }
            func field(_ offset: Int, _ width: Int) -> String {
                String(decoding: h[offset..<offset + width].prefix { $0 != 0 }, as: UTF8.self)
            }
            var name = field(0, 100)
            let prefix = field(345, 155)
            if !prefix.isEmpty { name = prefix + "/" + name }
            let size: Int64
            if h[124] & 0x80 != 0 {
                size = h[128..<136].reduce(Int64(0)) { $0 << 8 | Int64($1) }
            } else {
                guard let s = Int64(field(124, 12).trimmingCharacters(in: .whitespaces), radix: 8) else {
                    throw .archive(fd.path, "entry \"\(HaulError.quoted(name))\" has no readable size")
                }
                size = s
            }
            let type = h[156]
            while name.hasPrefix("./") { name.removeFirst(2) }
            while name.hasSuffix("/") { name.removeLast() }
            // The size is checked against what is left before any sum that a
            // hostile size could overflow.
            guard !name.hasPrefix("/"), !name.split(separator: "/").contains(".."), size >= 0,
                size <= total - at - Int64(block)
            else {
                throw .archive(fd.path, "entry \"\(HaulError.quoted(name))\" would leave the layout or the archive")
            }
            guard type == UInt8(ascii: "0") || type == 0 || type == UInt8(ascii: "5") else {
                throw .archive(fd.path, "entry \"\(HaulError.quoted(name))\" is not a file or directory (type \(type))")
            }
            if !name.isEmpty && name != "." {
                entries.append(
                    Entry(name: name, size: size, directory: type == UInt8(ascii: "5"), offset: at + Int64(block)))
            }
            at += Int64(block) + (size + Int64(block) - 1) / Int64(block) * Int64(block)
        }
        return entries
    }

    /// Copies `length` bytes at `offset` of `from` to the end of `to`.
    static func copy(from: borrowing FileDescriptor, offset: Int64, length: Int64, to: borrowing FileDescriptor)
        throws(HaulError)
    {
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var done: Int64 = 0
        while done < length {
            let want = Int(min(Int64(buffer.count), length - done))
            let n = buffer.withUnsafeMutableBytes { pread(from.rawValue, $0.baseAddress, want, off_t(offset + done)) }
            guard n > 0 else { throw .io(operation: "read", path: from.path, errno: n < 0 ? errno : EIO) }
            let failed: HaulError? = buffer.withUnsafeBytes { bytes in
                do throws(HaulError) { try to.writeAll(UnsafeRawBufferPointer(rebasing: bytes[0..<n])) } catch {
                    return error
                }
                return nil
            }
            if let failed { throw failed }
            done += Int64(n)
        }
    }
}

extension String {
    fileprivate func leftPadded(_ width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
