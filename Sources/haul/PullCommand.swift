import ArgumentParser
import Foundation
import HaulKit

struct PullCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pull",
        abstract: "Pull a model from a registry.",
        discussion: "NAME is [host/][namespace/]model[:tag]; defaults: registry.ollama.ai, library, latest."
    )

    @Argument(help: "The model to pull, e.g. llama3.2 or 127.0.0.1:5000/library/sample:latest.")
    var name: String

    @Flag(help: "Use plain HTTP to talk to the registry (as ollama pull --insecure).")
    var insecure = false

    @Flag(help: "Print the NDJSON lines /api/pull would stream, on stdout.")
    var json = false

    @Flag(name: .shortAndLong, help: "Print nothing but errors.")
    var quiet = false

    @Option(help: "Parallel range connections across all layers.")
    var connections: Int?

    @Option(help: "Seconds without data before a connection counts as stalled and is retried.")
    var stallTimeout: Int?

    @Option(help: ArgumentHelp("Where hashing runs: threaded or inline.", visibility: .hidden))
    var hashMode: EngineConfiguration.HashMode?

    func validate() throws {
        if let connections, !(1...256).contains(connections) {
            throw ValidationError("--connections must be between 1 and 256")
        }
        if let stallTimeout, !(1...3600).contains(stallTimeout) {
            throw ValidationError("--stall-timeout must be between 1 and 3600 seconds")
        }
    }

    func run() async throws {
        var config = EngineConfiguration()
        if let connections { config.connections = connections }
        if let hashMode { config.hashMode = hashMode }
        if let stallTimeout { config.stallTimeout = stallTimeout }
        config.userAgent = UserAgent.string
        let haul = Haul(configuration: config)
        let view: any ProgressView
        if quiet {
            view = QuietProgress()
        } else if json {
            view = JSONProgress()
        } else if Terminal.standardError.isTTY {
            view = BarProgress(terminal: .standardError)
        } else {
            view = PlainProgress(terminal: .standardError)
        }
        let interrupts = Interrupts { _ in Task { await haul.shutdown() } }
        var kept: [Digest: Int64] = [:]
        do {
            for try await event in haul.pull(name, insecure: insecure) {
                switch event {
                case .resuming(let p), .progress(let p): kept[p.digest] = p.completed
                default: break
                }
                view.handle(event)
            }
            view.finish(error: nil)
        } catch {
            guard interrupts.received else {
                view.finish(error: error)
                throw json ? ExitCode(1) : fail(error)
            }
            // The pull is stopping; wait for its last checkpoint before
            // promising the user that nothing is lost.
            await haul.shutdown()
            view.finish(error: HaulError.cancelled)
            let bytes = kept.values.reduce(0, +)
            Terminal.standardError.write("\nInterrupted: \(ByteFormat.decimal(bytes)) downloaded so far is kept. "
                + "Run 'haul pull \(name)' again to resume.\n")
            throw ExitCode(130)
        }
    }
}

extension EngineConfiguration.HashMode: ExpressibleByArgument {}

enum UserAgent {
    /// Ollama's registry gates new models on the client version in the
    /// User-Agent (HTTP 412, reference §2.2), so Haul states the Ollama API
    /// level it implements and names itself after it.
    static let string: String = {
        #if arch(arm64)
        let arch = "arm64"
        #else
        let arch = "amd64"
        #endif
        return "ollama/0.33.0 (\(arch) linux) haul/0.1.0"
    }()
}
