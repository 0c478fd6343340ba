import Foundation
import HaulKit

/// Turns pull events into output. Called from one task, in order.
protocol ProgressView: AnyObject {
    func handle(_ event: PullEvent)
    func finish(error: (any Error)?)
}

final class QuietProgress: ProgressView {
    func handle(_ event: PullEvent) {}
    func finish(error: (any Error)?) {}
}

/// The lines `/api/pull` streams, on stdout, plus one line of Haul's own
/// per blob naming the host it came from (`{"status":"source",…}`); a
/// failure ends with an `{"error":…}` line as Ollama's stream does. Mirror
/// notices go to stderr.
///
/// With several models, every line starts with the model it is about
/// (`{"model":"llama3.2",…}`), since their lines interleave.
final class JSONProgress: ProgressView {
    private let model: String?

    init(model: String? = nil) { self.model = model }

    func handle(_ event: PullEvent) {
        if let line = ProgressJSON.line(for: event, model: model) {
            Terminal.standardOutput.write(line + "\n")
        } else if case .notice(let text) = event {
            Terminal.standardError.write("haul: \(model.map { $0 + ": " } ?? "")\(text)\n")
        }
    }

    func finish(error: (any Error)?) {
        guard let error else { return }
        Terminal.standardOutput.write(ProgressJSON.error(HaulError.text(of: error), model: model) + "\n")
    }
}

/// Ollama's duration style: 59s, 5m3s, 2h10m, 99h+.
func formatETA(_ seconds: Double) -> String {
    let s = Int(seconds.rounded())
    if s >= 100 * 3600 { return "99h+" }
    if s >= 3600 { return "\(s / 3600)h\(s % 3600 / 60)m" }
    if s >= 60 { return "\(s / 60)m\(s % 60)s" }
    return "\(s)s"
}

func now() -> Double { Date().timeIntervalSince1970 }
