import Foundation
import HaulKit

// embedder MODELS_DIR MODEL [--insecure]
//
// Pulls MODEL into MODELS_DIR (an Ollama models directory) and prints the
// whole model's progress, at most a few lines a second: what an
// application embedding Haul shows its users.
let arguments = CommandLine.arguments
guard arguments.count >= 3 else {
    print("usage: embedder MODELS_DIR MODEL [--insecure]")
    exit(2)
}
let haul = Haul(store: ModelStore(root: arguments[1]))
var progress = PullProgress()
var lastLine = 0.0
do {
    for try await event in haul.pull(arguments[2], insecure: arguments.dropFirst(3).contains("--insecure")) {
        progress.apply(event)
        let now = Double(DispatchTime.now().uptimeNanoseconds) / 1e9
        guard progress.phase != .downloading || now - lastLine >= 0.25 else { continue }
        lastLine = now
        var line =
            "\(progress.phase): \(progress.completedBytes)/\(progress.totalBytes) bytes"
            + " (\(Int(progress.fraction * 100))%)"
        if let rate = progress.bytesPerSecond { line += ", \(Int(rate)) B/s" }
        if let eta = progress.eta { line += ", \(Int(eta.rounded())) s left" }
        print(line)
    }
    print("pulled \(progress.name?.displayShortest ?? arguments[2]): \(progress.blobs.count) blobs")
} catch {
    print("Error: \(error)")
    await haul.shutdown()
    exit(1)
}
await haul.shutdown()
