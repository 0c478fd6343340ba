import Foundation

/// One `Range: bytes=…` request header of a client of the node, as RFC 9110
/// §14.1.2 reads it. A list of ranges is answered with the whole blob,
/// which the RFC allows. Its numbers go through `WireNumber`, so
/// `bytes=0-9223372036854775807` is a range to the blob's end, never an
/// overflow.
package enum ByteRange: Equatable, Sendable {
    case whole
    case part(ClosedRange<Int64>)
    case unsatisfiable

    /// The range `value` asks of a blob of `size` bytes.
    package static func parse(_ value: String, size: Int64) -> ByteRange {
        let v = value.trimmingCharacters(in: .whitespaces)
        guard v.lowercased().hasPrefix("bytes="), !v.contains(",") else { return .whole }
        let spec = v.dropFirst(6).trimmingCharacters(in: .whitespaces)
        guard let dash = spec.firstIndex(of: "-") else { return .whole }
        let first = spec[..<dash]
        let last = spec[spec.index(after: dash)...]
        // Any number a client may write is within Int64; one beyond it
        // (more than 18 digits) means "to the end" when it is the last
        // byte, and is no range otherwise.
        let any: ClosedRange<Int64> = 0...Int64.max
        if first.allSatisfy({ $0 == " " }) {
            // The last N bytes.
            guard let n = WireNumber.parse(last, in: any) else { return .whole }
            guard n > 0, size > 0 else { return .unsatisfiable }
            return .part(max(0, size - n)...(size - 1))
        }
        guard let start = WireNumber.parse(first, in: any) else { return .whole }
        guard start < size else { return .unsatisfiable }
        if last.allSatisfy({ $0 == " " }) { return .part(start...(size - 1)) }
        guard let end = WireNumber.parse(last, in: any) ?? (Self.isDigits(last) ? Int64.max : nil), end >= start
        else { return .whole }
        return .part(start...min(end, size - 1))
    }

    private static func isDigits(_ text: Substring) -> Bool {
        let t = text.trimmingCharacters(in: .whitespaces)
        return !t.isEmpty && t.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 }
    }
}
