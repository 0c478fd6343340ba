import Foundation
import HaulKit

/// Ollama-style output for a terminal: status lines and one bar per blob,
/// redrawn in place at most 10 times a second.
final class BarProgress: ProgressView {
    private enum Line {
        case status(String)
        case blob(Digest)
    }

    private let terminal: Terminal
    private var lines: [Line] = []
    private var blobs: [Digest: (progress: BlobProgress, meter: RateMeter)] = [:]
    private var drawnLines = 0
    private var lastDraw = 0.0
    private var plan: PullPlan?
    private let started = now()

    init(terminal: Terminal) {
        self.terminal = terminal
        terminal.write("\u{1B}[?25l")
    }

    func handle(_ event: PullEvent) {
        switch event {
        case .plan(let p):
            plan = p
        case .resuming(let p):
            lines.append(.status(Resuming.text(p)))
        case .progress(let p):
            if blobs[p.digest] == nil {
                // Like ollama: a bar appears once its blob has bytes.
                guard p.completed > 0 || p.total == 0 else { return }
                lines.append(.blob(p.digest))
                blobs[p.digest] = (p, RateMeter())
            }
            blobs[p.digest]!.progress = p
            blobs[p.digest]!.meter.add(p.completed, at: now())
        default:
            if let text = ProgressJSON.statusText(event) { lines.append(.status(text)) }
        }
        let t = now()
        if t - lastDraw >= 0.1 || isFinal(event) {
            draw()
            lastDraw = t
        }
    }

    func finish(error: (any Error)?) {
        draw()
        terminal.write("\u{1B}[?25h")
        if error == nil, let plan {
            let elapsed = max(now() - started, 0.001)
            let rate = Double(plan.missingBytes) / elapsed
            terminal.write("pulled \(plan.name.displayShortest): \(ByteFormat.decimal(plan.totalBytes)) "
                + "(\(ByteFormat.decimal(plan.missingBytes)) downloaded) in \(ByteFormat.oneDecimal(elapsed))s"
                + (plan.missingBytes > 0 ? ", \(ByteFormat.decimal(Int64(rate)))/s\n" : "\n"))
        }
    }

    private func isFinal(_ event: PullEvent) -> Bool {
        if case .progress = event { return false }
        return true
    }

    private func draw() {
        let width = terminal.width
        var out = "\u{1B}[?2026h"
        if drawnLines > 0 { out += "\u{1B}[\(drawnLines)A" }
        for line in lines {
            out += "\r"
            switch line {
            case .status(let text):
                out += text
            case .blob(let digest):
                if let b = blobs[digest] { out += bar(b.progress, rate: b.meter.bytesPerSecond, width: width) }
            }
            out += "\u{1B}[K\n"
        }
        out += "\u{1B}[?2026l"
        drawnLines = lines.count
        terminal.write(out)
    }

    private func bar(_ p: BlobProgress, rate: Double?, width: Int) -> String {
        let label = "pulling \(p.digest.short): "
        let fraction = p.total > 0 ? Double(p.completed) / Double(p.total) : 1
        let percent = String(repeating: " ", count: max(0, 3 - "\(Int(fraction * 100))".count)) + "\(Int(fraction * 100))%"
        let done = p.completed >= p.total
        var stats: String
        if done {
            stats = pad(ByteFormat.decimal(p.total), 15)
        } else {
            stats = pad(ByteFormat.decimal(p.completed), 7) + "/" + pad(ByteFormat.decimal(p.total), 7)
            if let rate, rate > 0 {
                stats += "  " + pad(ByteFormat.decimal(Int64(rate)), 7) + "/s  "
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

/// Output for logs and pipes: one line per status, one per finished blob,
/// and a progress line per blob in flight every few seconds. No escapes.
final class PlainProgress: ProgressView {
    private let terminal: Terminal
    private var lastReport: [Digest: Double] = [:]
    private var finished: Set<Digest> = []
    private var meters: [Digest: RateMeter] = [:]

    init(terminal: Terminal) { self.terminal = terminal }

    func handle(_ event: PullEvent) {
        switch event {
        case .plan(let plan):
            terminal.write("pulling \(plan.name.displayShortest): \(plan.blobs.count) blobs, "
                + "\(ByteFormat.decimal(plan.totalBytes)) (\(ByteFormat.decimal(plan.missingBytes)) to download)\n")
        case .resuming(let p):
            terminal.write(Resuming.text(p) + "\n")
        case .progress(let p):
            let t = now()
            meters[p.digest, default: RateMeter()].add(p.completed, at: t)
            if p.completed >= p.total {
                if finished.insert(p.digest).inserted {
                    terminal.write("pulling \(p.digest.short): 100% \(ByteFormat.decimal(p.total))\n")
                }
            } else if t - (lastReport[p.digest] ?? t - 4) >= 5 {
                lastReport[p.digest] = t
                let percent = p.total > 0 ? Int(Double(p.completed) * 100 / Double(p.total)) : 0
                var line = "pulling \(p.digest.short): \(percent)% \(ByteFormat.decimal(p.completed))/\(ByteFormat.decimal(p.total))"
                if let rate = meters[p.digest]?.bytesPerSecond, rate > 0 {
                    line += " \(ByteFormat.decimal(Int64(rate)))/s"
                }
                terminal.write(line + "\n")
            }
        default:
            if let text = ProgressJSON.statusText(event) { terminal.write(text + "\n") }
        }
    }

    func finish(error: (any Error)?) {}
}

enum Resuming {
    static func text(_ p: BlobProgress) -> String {
        "resuming \(p.digest.short): \(ByteFormat.decimal(p.completed)) of \(ByteFormat.decimal(p.total)) already downloaded"
    }
}
