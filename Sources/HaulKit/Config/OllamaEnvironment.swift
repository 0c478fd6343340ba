import Foundation

/// Ollama's environment variables, read with Ollama's rules
/// (`envconfig.Var`/`Bool`), so one environment configures both.
public enum OllamaEnvironment {
    /// The value of `key`, trimmed of spaces and of surrounding quotes.
    public static func string(_ key: String, _ environment: [String: String] = ProcessInfo.processInfo.environment)
        -> String
    {
        (environment[key] ?? "").trimmingWhitespaceAndQuotes
    }

    /// Unset or empty is false; a value Go's `ParseBool` cannot read is
    /// true (setting the variable at all means "on").
    public static func bool(_ key: String, _ environment: [String: String] = ProcessInfo.processInfo.environment)
        -> Bool
    {
        let value = string(key, environment)
        switch value {
        case "": return false
        case "1", "t", "T", "TRUE", "true", "True": return true
        case "0", "f", "F", "FALSE", "false", "False": return false
        default: return true
        }
    }
}

extension String {
    /// `envconfig.Var`'s cleanup: surrounding spaces, then quotes.
    var trimmingWhitespaceAndQuotes: String {
        var s = Substring(self)
        while let c = s.first, c.isWhitespace { s.removeFirst() }
        while let c = s.last, c.isWhitespace { s.removeLast() }
        while let c = s.first, c == "\"" || c == "'" { s.removeFirst() }
        while let c = s.last, c == "\"" || c == "'" { s.removeLast() }
        return String(s)
    }
}
