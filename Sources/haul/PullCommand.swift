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

    @Flag(help: "Pull through the daemon at $OLLAMA_HOST (haul serve or ollama serve); the default when OLLAMA_HOST is set.")
    var remote = false

    @Flag(help: "Pull in this process even when OLLAMA_HOST is set.")
    var local = false

    @Flag(help: "Print the NDJSON lines /api/pull would stream, on stdout.")
    var json = false

    @Flag(name: .shortAndLong, help: "Print nothing but errors.")
    var quiet = false

    @Option(help: "Registry username (with --password-stdin); also HAUL_REGISTRY_AUTH=HOST=USER:PASSWORD or docker login.")
    var username: String?

    @Flag(help: "Read the registry password from standard input.")
    var passwordStdin = false

    @OptionGroup var tls: TLSOptions

    @Option(help: ArgumentHelp("Mirror configuration directories, colon-separated (containerd's hosts.toml layout: DIR/HOST/hosts.toml, DIR/_default/hosts.toml); also HAUL_HOSTS_DIR.", valueName: "DIRS"))
    var hostsDir: String?

    @Option(help: "Parallel range connections across all layers.")
    var connections: Int?

    @Option(help: "Seconds without data before a connection counts as stalled and is retried.")
    var stallTimeout: Int?

    @Option(help: ArgumentHelp("Where hashing runs: threaded or inline.", visibility: .hidden))
    var hashMode: EngineConfiguration.HashMode?

    func validate() throws {
        if remote && local { throw ValidationError("--remote and --local exclude each other") }
        if remote && (username != nil || tls.caFile != nil || tls.insecureSkipTlsVerify || hostsDir != nil) {
            throw ValidationError("--username, --ca-file, --insecure-skip-tls-verify and --hosts-dir apply to local pulls; "
                + "a daemon uses its own settings")
        }
        if (username != nil) != passwordStdin {
            throw ValidationError("--username and --password-stdin go together")
        }
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
        tls.apply(to: &config)
        let environment = ProcessInfo.processInfo.environment
        let server = OllamaHost.fromEnvironment(environment)
        let viaDaemon = remote || (!local && OllamaHost.isSet(environment))
        var auth = RegistryAuth()
        try checkRegistryAuth(environment)
        if let username {
            var password = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
            while password.hasSuffix("\n") || password.hasSuffix("\r") { password.removeLast() }
            // For the registry of this model only.
            guard let host = try? ModelName(parsing: name).host else { throw fail(HaulError.invalidModelName) }
            auth.credentials.explicit[host.lowercased()] = RegistryCredentials(username: username, password: password)
        }
        let hosts = hostsDir.map { HostsDirectory(directories: $0.split(separator: ":").map(String.init)) }
            ?? .fromEnvironment(environment)
        let haul = Haul(configuration: config, auth: auth, hosts: hosts)
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
        let remotePull = viaDaemon ? RemotePull(server: server, name: name, insecure: insecure).start() : nil
        let events = remotePull?.events ?? haul.pull(name, insecure: insecure)
        // Ctrl-C ends the pull: a local one checkpoints and stops; a remote
        // one closes its request, and the daemon cancels the download unless
        // another client still wants it.
        let interrupts = Interrupts { _ in
            if let remotePull { remotePull.cancel() } else { Task { await haul.shutdown() } }
        }
        var kept: [Digest: Int64] = [:]
        var failure: (any Error)?
        do {
            for try await event in events {
                switch event {
                case .resuming(let p), .progress(let p): kept[p.digest] = p.completed
                default: break
                }
                view.handle(event)
            }
        } catch {
            failure = error
        }
        switch failure {
        case nil:
            view.finish(error: nil)
        case let error? where !interrupts.received:
            view.finish(error: error)
            throw json ? ExitCode(1) : fail(error)
        case _?:
            // The pull is stopping; wait for its last checkpoint before
            // promising the user that nothing is lost.
            await haul.shutdown()
            view.finish(error: HaulError.cancelled)
            if viaDaemon {
                Terminal.standardError.write("\nInterrupted. The server keeps what it downloaded; "
                    + "run 'haul pull \(name)' again to resume.\n")
            } else {
                Terminal.standardError.write("\nInterrupted: \(ByteFormat.decimal(kept.values.reduce(0, +))) downloaded so far is kept. "
                    + "Run 'haul pull \(name)' again to resume.\n")
            }
            throw ExitCode(130)
        }
    }
}

extension EngineConfiguration.HashMode: ExpressibleByArgument {}
