/// Sizes the way Ollama prints them: decimal units (1 MB = 1000 x 1000 B).
public enum ByteFormat {
    /// Bytes in decimal units as Ollama prints them (`4.2 MB`, `1.1 GB`).
    public static func decimal(_ bytes: Int64) -> String {
        let units = ["B", "KB", "MB", "GB", "TB", "PB"]
        var value = Double(bytes)
        var unit = 0
        while value >= 1000 && unit < units.count - 1 {
            value /= 1000
            unit += 1
        }
        if unit == 0 { return "\(bytes) B" }
        let rounded = value >= 100 ? "\(Int(value.rounded()))" : oneDecimal(value)
        return "\(rounded) \(units[unit])"
    }

    /// One decimal place, without Foundation's locale-dependent formatting.
    public static func oneDecimal(_ value: Double) -> String {
        let tenths = Int((value * 10).rounded())
        return "\(tenths / 10).\(tenths % 10)"
    }
}
