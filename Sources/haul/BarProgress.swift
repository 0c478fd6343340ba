import Foundation
import HaulKit

/// Ollama-style output for a terminal: status lines and one bar per blob,
/// redrawn in place at most 10 times a second. Several pulls share one
/// `BarBoard`, each drawn as its own group of lines under its name.
final class BarProgress: ProgressView {
    private enum Line {
        case status(String)
        case blob(Digest)
    }

    private let board: BarBoard
    /// The group's heading when several pulls share the board.
    private let title: String?
    private var lines: [Line] = []
    /// Per-blob bytes and rates (HaulKit's whole-model progress).
    private var progress = PullProgress()
    /// Blobs with a bar: like ollama, a bar appears once its blob has bytes.
    private var shown: Set<Digest> = []
    private var plan: PullPlan?
    private let started = now()

    init(board: BarBoard, title: String? = nil) {
        self.board = board
        self.title = title
        board.add(self)
    }

    convenience init(terminal: Terminal) { self.init(board: BarBoard(terminal: terminal)) }

    func handle(_ event: PullEvent) {
        progress.apply(event)
        switch event {
        case .plan(let p):
            plan = p
        case .resuming(let p):
            lines.append(.status(Resuming.text(p)))
        case .progress(let p):
            if !shown.contains(p.digest) {
                guard p.completed > 0 || p.total == 0 else { return }
                shown.insert(p.digest)
                lines.append(.blob(p.digest))
            }
        default:
            if let text = ProgressJSON.statusText(event) { lines.append(.status(text)) }
        }
        board.draw(force: isFinal(event))
    }

    func finish(error: (any Error)?) {
        if error == nil, let plan {
            let elapsed = max(now() - started, 0.001)
            let rate = Double(plan.missingBytes) / elapsed
            lines.append(
                .status(
                    "pulled \(plan.name.displayShortest): \(ByteFormat.decimal(plan.totalBytes)) "
                        + "(\(ByteFormat.decimal(plan.missingBytes)) downloaded) in \(ByteFormat.oneDecimal(elapsed))s"
                        + (plan.missingBytes > 0 ? ", \(ByteFormat.decimal(Int64(rate)))/s" : "")))
        } else if let error, title != nil {
            lines.append(.status("failed: " + HaulError.text(of: error)))
        }
        board.draw(force: true)
        board.groupFinished()
    }

    private func isFinal(_ event: PullEvent) -> Bool {
        if case .progress = event { return false }
        return true
    }

    /// The group's lines, as wide as the terminal.
    fileprivate func render(width: Int) -> [String] {
        var out = title.map { [$0 + ":"] } ?? []
        let indent = title == nil ? "" : "  "
        for line in lines {
            switch line {
            case .status(let text):
                out.append(indent + text)
            case .blob(let digest):
                if let b = progress.blob(digest) { out.append(indent + bar(b, width: width - indent.count)) }
            }
        }
        return out
    }

    private func bar(_ p: PullProgress.Blob, width: Int) -> String {
        let label = "pulling \(p.digest.short): "
        let fraction = p.total > 0 ? Double(p.completed) / Double(p.total) : 1
        let percent =
            String(repeating: " ", count: max(0, 3 - "\(Int(fraction * 100))".count)) + "\(Int(fraction * 100))%"
        let done = p.completed >= p.total
        var stats: String
        if done {
            stats = pad(ByteFormat.decimal(p.total), 15)
        } else {
            stats = pad(ByteFormat.decimal(p.completed), 7) + "/" + pad(ByteFormat.decimal(p.total), 7)
            if let rate = p.bytesPerSecond, rate > 0 {
                stats +=
                    "  " + pad(ByteFormat.decimal(Int64(rate)), 7) + "/s  "
                    + pad(formatETA(Double(p.total - p.completed) / rate), 6)
            }
        }
        let barWidth = max(10, width - label.count - percent.count - stats.count - 6)
        let filled = min(barWidth, Int(fraction * Double(barWidth)))
        return label + percent + " ▕" + String(repeating: "█", count: filled)
            + String(repeating: " ", count: barWidth - filled) + "▏ " + stats
    }

    private func pad(_ s: String, _ n: Int) -> String {
        s.count >= n ? s : String(repeating: " ", count: n - s.count) + s
    }
}

/// The terminal area the bar groups are drawn in: every group's lines,
/// in order, redrawn in place (cursor up, overwrite) at most 10 times a
/// second; the cursor is hidden until the last group finished.
final class BarBoard {
    private let terminal: Terminal
    private var groups: [BarProgress] = []
    private var finished = 0
    private var drawnLines = 0
    private var lastDraw = 0.0

    init(terminal: Terminal) {
        self.terminal = terminal
        terminal.write("\u{1B}[?25l")
    }

    fileprivate func add(_ group: BarProgress) { groups.append(group) }

    fileprivate func groupFinished() {
        finished += 1
        if finished == groups.count { terminal.write("\u{1B}[?25h") }
    }

    fileprivate func draw(force: Bool) {
        let t = now()
        guard force || t - lastDraw >= 0.1 else { return }
        lastDraw = t
        let width = terminal.width
        var out = "\u{1B}[?2026h"
        if drawnLines > 0 { out += "\u{1B}[\(drawnLines)A" }
        var count = 0
        for group in groups {
            for line in group.render(width: width) {
                out += "\r" + line + "\u{1B}[K\n"
                count += 1
            }
        }
        out += "\u{1B}[?2026l"
        drawnLines = count
        terminal.write(out)
    }
}

/// Output for logs and pipes: one line per status, one per finished blob,
/// and a progress line per blob in flight every few seconds. No escapes.
final class PlainProgress: ProgressView {
    private let output: Terminal
    /// `model: ` before every line when several pulls share the output.
    private let prefix: String
    private var lastReport: [Digest: Double] = [:]
    private var finished: Set<Digest> = []
    private var progress = PullProgress()

    init(terminal: Terminal, model: String? = nil) {
        output = terminal
        prefix = model.map { $0 + ": " } ?? ""
    }

    private func write(_ text: String) { output.write(prefix + text) }

    func handle(_ event: PullEvent) {
        progress.apply(event)
        switch event {
        case .plan(let plan):
            write(
                "pulling \(plan.name.displayShortest): \(plan.blobs.count) blobs, "
                    + "\(ByteFormat.decimal(plan.totalBytes)) (\(ByteFormat.decimal(plan.missingBytes)) to download)\n")
        case .resuming(let p):
            write(Resuming.text(p) + "\n")
        case .progress(let p):
            let t = now()
            if p.completed >= p.total {
                if finished.insert(p.digest).inserted {
                    write("pulling \(p.digest.short): 100% \(ByteFormat.decimal(p.total))\n")
                }
            } else if t - (lastReport[p.digest] ?? t - 4) >= 5 {
                lastReport[p.digest] = t
                let percent = p.total > 0 ? Int(Double(p.completed) * 100 / Double(p.total)) : 0
                var line =
                    "pulling \(p.digest.short): \(percent)% \(ByteFormat.decimal(p.completed))/\(ByteFormat.decimal(p.total))"
                if let rate = progress.blob(p.digest)?.bytesPerSecond, rate > 0 {
                    line += " \(ByteFormat.decimal(Int64(rate)))/s"
                }
                write(line + "\n")
            }
        default:
            if let text = ProgressJSON.statusText(event) { write(text + "\n") }
        }
    }

    func finish(error: (any Error)?) {}
}

enum Resuming {
    static func text(_ p: BlobProgress) -> String {
        "resuming \(p.digest.short): \(ByteFormat.decimal(p.completed)) of \(ByteFormat.decimal(p.total)) already downloaded"
    }
}
