/// "2 minutes ago", as ollama list prints.
enum Age {
    static func describe(_ seconds: Double) -> String {
        let s = max(0, Int(seconds))
        func unit(_ n: Int, _ name: String) -> String { n == 1 ? "1 \(name) ago" : "\(n) \(name)s ago" }
        if s < 60 { return s < 2 ? "Less than a second ago" : unit(s, "second") }
        if s < 3600 { return unit(s / 60, "minute") }
        if s < 86400 { return unit(s / 3600, "hour") }
        if s < 86400 * 7 { return unit(s / 86400, "day") }
        if s < 86400 * 30 { return unit(s / (86400 * 7), "week") }
        return unit(s / (86400 * 30), "month")
    }
}
