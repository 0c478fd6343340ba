/// The one reader of integers that come from outside: a header, a JSON
/// field, a session's progress. Each is read as plain ASCII digits (no
/// sign, no exponent, no spaces inside) into a value within the bounds
/// the caller states, so nothing a registry, mirror or client sends can
/// overflow later arithmetic: the caller's bound leaves room for the sums
/// it does (`last + 1`, `offset + length`).
///
/// `Int64("9223372036854775807")` parses, and `+ 1` on it traps; a bound
/// stated here, below `Int64.max`, is what keeps every reader of this
/// value from trapping. Anything out of bounds is nil: the caller says
/// who sent it and what to do (see `WireNumber.Invalid`).
public enum WireNumber {
    /// A value someone sent that is not a number within the bounds it must
    /// keep, with who sent it: its description is a user's error text.
    public struct Invalid: Error, Sendable, Equatable, CustomStringConvertible {
        /// Who sent it (a host, "the client").
        public let sender: String
        /// What it was (a header's name, a JSON field).
        public let field: String
        /// The text, quoted and shortened for an error.
        public let value: String
        /// The bounds it had to keep.
        public let bounds: ClosedRange<Int64>

        public var description: String {
            "\(sender) sent \(field) \(value), which is not a number in \(bounds.lowerBound)...\(bounds.upperBound)"
        }
    }

    /// `text` (surrounding spaces and tabs allowed) as a decimal number
    /// within `bounds`; nil for anything else, including a number beyond
    /// Int64 (each step of the accumulation reports its overflow, so no
    /// length of digits can trap).
    public static func parse(_ text: some StringProtocol, in bounds: ClosedRange<Int64>) -> Int64? {
        var digits = Substring(text).utf8.drop { $0 == 0x20 || $0 == 0x09 }
        while let last = digits.last, last == 0x20 || last == 0x09 { digits = digits.dropLast() }
        guard !digits.isEmpty else { return nil }
        var value: Int64 = 0
        for byte in digits {
            guard byte >= 0x30, byte <= 0x39 else { return nil }
            let (shifted, o1) = value.multipliedReportingOverflow(by: 10)
            let (next, o2) = shifted.addingReportingOverflow(Int64(byte &- 0x30))
            guard !o1, !o2 else { return nil }
            value = next
        }
        return bounds.contains(value) ? value : nil
    }

    /// As `parse`, but a value out of bounds is an error naming `sender`
    /// and `field`; an absent value is nil.
    public static func read(_ text: String?, in bounds: ClosedRange<Int64>, field: String, from sender: String)
        throws(Invalid) -> Int64?
    {
        guard let text else { return nil }
        guard let value = parse(text, in: bounds) else {
            throw Invalid(
                sender: sender, field: field, value: HaulError.quoted(String(text.prefix(64))), bounds: bounds)
        }
        return value
    }
}
