import Foundation

/// A transfer rate as curl's `--limit-rate` and aria2c's
/// `--max-overall-download-limit` write it: bytes per second, with an
/// optional binary suffix (`500K`, `20M`, `1.5G`). `0` means no limit, as
/// in curl.
public enum ByteRate {
    /// Bytes per second; nil for no limit.
    public static func parse(_ text: String) throws(HaulError) -> Int64? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        var number = Substring(trimmed)
        var unit: Double = 1
        if let last = number.last,
            let scale = ["k": 1024.0, "m": 1024.0 * 1024, "g": 1024.0 * 1024 * 1024][last.lowercased()]
        {
            unit = scale
            number = number.dropLast()
        }
        guard !number.isEmpty, number.allSatisfy({ $0.isNumber || $0 == "." }),
            let value = Double(number), value.isFinite, value >= 0, value * unit < 1e15
        else {
            throw .invalidRate(text)
        }
        let bytes = Int64((value * unit).rounded())
        if bytes == 0 { return nil }
        return bytes
    }
}
