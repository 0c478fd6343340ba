import ArgumentParser
import Foundation
import HaulKit

struct PullCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pull",
        abstract: "Pull a model from a registry.",
        discussion: """
            NAME is [host/][namespace/]model[:tag]; defaults: registry.ollama.ai, library, latest. \
            Several models are pulled at once, sharing connections and common layers; the exit \
            status is 1 if any failed.
            """
    )

    @Argument(help: "The models to pull, e.g. llama3.2 or 127.0.0.1:5000/library/sample:latest.")
    var names: [String] = []

    @Option(
        name: .shortAndLong,
        help: ArgumentHelp("Also pull the models listed in FILE, one per line (# starts a comment).", valueName: "FILE")
    )
    var file: String?

    @Flag(help: "Pull every stored model again: only layers that changed move.")
    var all = false

    /// The one model of a single pull (messages speak of it).
    private var name: String { names.first ?? "" }

    @Flag(help: "Use plain HTTP to talk to the registry (as ollama pull --insecure).")
    var insecure = false

    @Flag(
        help:
            "Pull through the daemon at $OLLAMA_HOST (haul serve or ollama serve); the default when OLLAMA_HOST is set."
    )
    var remote = false

    @Flag(help: "Pull in this process even when OLLAMA_HOST is set.")
    var local = false

    @Flag(help: "Print the NDJSON lines /api/pull would stream, on stdout.")
    var json = false

    @Flag(name: .shortAndLong, help: "Print nothing but errors.")
    var quiet = false

    @Option(
        help: "Registry username (with --password-stdin); also HAUL_REGISTRY_AUTH=HOST=USER:PASSWORD or docker login.")
    var username: String?

    @Flag(help: "Read the registry password from standard input.")
    var passwordStdin = false

    @OptionGroup var tls: TLSOptions

    @OptionGroup var layout: StoreLayoutOption

    @Option(
        help: ArgumentHelp(
            "Which child of a manifest list to pull: llamacpp, ggml or mlx (Ollama's aliases too). "
                + "Default: llama.cpp, then ggml, then MLX.", valueName: "RUNNER"))
    var runner: String?

    @Option(
        help: ArgumentHelp(
            "Mirror configuration directories, colon-separated (containerd's hosts.toml layout: DIR/HOST/hosts.toml, DIR/_default/hosts.toml); also HAUL_HOSTS_DIR.",
            valueName: "DIRS"))
    var hostsDir: String?

    @Option(
        help:
            "Parallel range connections across all layers: the most any server gets, each finding its own count by measuring."
    )
    var connections: Int?

    @Flag(help: "Use --connections for every server, without measuring.")
    var fixed = false

    @Option(
        help: ArgumentHelp(
            "Total download rate, bytes per second (500K, 20M, 1G, as curl); also HAUL_LIMIT_RATE.", valueName: "RATE"))
    var limitRate: String?

    @Option(help: "Seconds without data before a connection counts as stalled and is retried.")
    var stallTimeout: Int?

    @Flag(help: "Write blobs past the page cache (O_DIRECT); also HAUL_DIRECT_IO=1.")
    var directIO = false

    @Option(help: ArgumentHelp("Where hashing runs: threaded or inline.", visibility: .hidden))
    var hashMode: EngineConfiguration.HashMode?

    func validate() throws {
        if names.isEmpty && file == nil && !all {
            throw ValidationError("name a model to pull, or a list of them with --file")
        }
        if all && (!names.isEmpty || file != nil) { throw ValidationError("--all pulls every stored model; name none") }
        if remote && local { throw ValidationError("--remote and --local exclude each other") }
        if remote
            && (username != nil || tls.caFile != nil || tls.insecureSkipTlsVerify || hostsDir != nil
                || limitRate != nil)
        {
            throw ValidationError(
                "--username, --ca-file, --insecure-skip-tls-verify, --hosts-dir and --limit-rate apply to local pulls; "
                    + "a daemon uses its own settings")
        }
        if let runner, Runner.normalize(runner) == nil {
            throw ValidationError(HaulError.unknownRunner(runner).description + ": give llamacpp, ggml or mlx")
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
        let models = try modelList()
        let environment = ProcessInfo.processInfo.environment
        var config = EngineConfiguration.fromEnvironment(environment)
        if let connections { config.connections = connections }
        if fixed { config.adaptiveConnections = false }
        if let hashMode { config.hashMode = hashMode }
        if directIO { config.directIO = true }
        if let stallTimeout { config.stallTimeout = .seconds(stallTimeout) }
        tls.apply(to: &config)
        config.maxBytesPerSecond = try parseLimitRate(limitRate, environment)
        let server = OllamaHost.fromEnvironment(environment)
        let viaDaemon = remote || (!local && OllamaHost.isSet(environment))
        var auth = RegistryAuth.fromEnvironment(environment)
        try checkRegistryAuth(environment)
        if let username {
            let password = readPassword()
            // For the registry of these models only: one registry.
            let hosts = Set(models.compactMap { try? ModelName(parsing: $0).host.lowercased() })
            guard hosts.count == 1, let host = hosts.first else {
                throw fail(Refusal(description: "--username applies to one registry; these models name \(hosts.count)"))
            }
            auth.credentials.explicit[host.lowercased()] = RegistryCredentials(username: username, password: password)
        }
        let hosts =
            hostsDir.map { HostsDirectory(directories: $0.split(separator: ":").map(String.init)) }
            ?? .fromEnvironment(environment)
        let haul = Haul(
            store: layout.store(environment), configuration: config,
            prune: !OllamaEnvironment.bool("OLLAMA_NOPRUNE", environment), auth: auth, hosts: hosts,
            logger: LogFormat.logger(environment, whenUnset: false))
        if models.count > 1 {
            return try await pullMany(models, haul: haul, server: server, viaDaemon: viaDaemon)
        }
        let name = models[0]
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
        let remotePull =
            viaDaemon ? RemotePull(server: server, name: name, insecure: insecure, runner: runner).start() : nil
        let events = remotePull?.events ?? haul.pull(name, insecure: insecure, runner: runner)
        // Ctrl-C ends the pull: a local one checkpoints and stops; a remote
        // one closes its request, and the daemon cancels the download unless
        // another client still wants it.
        let interrupts = Interrupts { _ in
            if let remotePull { remotePull.cancel() } else { Task { await haul.shutdown() } }
        }
        var progress = PullProgress()
        var failure: (any Error)?
        do {
            for try await event in events {
                progress.apply(event)
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
                Terminal.standardError.write(
                    "\nInterrupted. The server keeps what it downloaded; "
                        + "run 'haul pull \(name)' again to resume.\n")
            } else {
                Terminal.standardError.write(
                    "\nInterrupted: \(ByteFormat.decimal(progress.partialBytes)) downloaded so far is kept. "
                        + "Run 'haul pull \(name)' again to resume.\n")
            }
            throw ExitCode(130)
        }
    }

    /// The models named on the command line and in `--file`, each checked
    /// before anything starts, duplicates dropped. A single name is left to
    /// the pull (or the daemon) to judge, as `ollama pull` does.
    private func modelList() throws -> [String] {
        if all {
            // One pull per name: a list's children share their tag.
            var seen = Set<String>()
            let stored = ModelStore.fromEnvironment().list().map(\.name.displayShortest).filter {
                seen.insert($0).inserted
            }
            guard !stored.isEmpty else {
                throw fail(Refusal(description: "no models stored in \(ModelStore.fromEnvironment().root)"))
            }
            return stored
        }
        if names.count == 1 && file == nil { return names }
        var out: [String] = []
        func add(_ text: String, at place: String) throws {
            guard (try? ModelName(parsing: text)) != nil else {
                throw fail(Refusal(description: "\(place)invalid model name \"\(text.prefix(100))\""))
            }
            if !out.contains(text) { out.append(text) }
        }
        for name in names { try add(name, at: "") }
        if let file {
            let text: String
            do {
                text = String(
                    decoding: try FileHandle(forReadingFrom: URL(fileURLWithPath: file)).readToEnd() ?? Data(),
                    as: UTF8.self)
            } catch {
                throw fail(Refusal(description: "cannot read \(file): \(error.localizedDescription)"))
            }
            for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                let line = raw.prefix { $0 != "#" }.trimmingCharacters(in: .whitespaces)
                if !line.isEmpty { try add(line, at: "\(file):\(number + 1): ") }
            }
        }
        guard !out.isEmpty else { throw fail(Refusal(description: "\(file ?? "the list") names no model")) }
        return out
    }

    /// Several pulls at once on one `Haul` (one connection budget, common
    /// layers downloaded once), each shown as its own group; the events of
    /// all are handled in one task, in arrival order.
    private func pullMany(_ models: [String], haul: Haul, server: OllamaHost, viaDaemon: Bool) async throws {
        let board = !quiet && !json && Terminal.standardError.isTTY ? BarBoard(terminal: .standardError) : nil
        let views: [any ProgressView] = models.map { model in
            if quiet { return QuietProgress() }
            if json { return JSONProgress(model: model) }
            if let board { return BarProgress(board: board, title: model) }
            return PlainProgress(terminal: .standardError, model: model)
        }
        let remotes =
            viaDaemon
            ? models.map { RemotePull(server: server, name: $0, insecure: insecure, runner: runner).start() } : []
        let interrupts = Interrupts { _ in
            if viaDaemon { remotes.forEach { $0.cancel() } } else { Task { await haul.shutdown() } }
        }
        let (merged, sink) = AsyncStream.makeStream(of: (index: Int, event: Result<PullEvent, any Error>?).self)
        for (index, model) in models.enumerated() {
            let events = viaDaemon ? remotes[index].events : haul.pull(model, insecure: insecure, runner: runner)
            Task {
                do {
                    for try await event in events { sink.yield((index, .success(event))) }
                    sink.yield((index, nil))
                } catch {
                    sink.yield((index, .failure(error)))
                }
            }
        }
        var failures: [(model: String, error: any Error)] = []
        var ended = 0
        for await (index, item) in merged {
            switch item {
            case .success(let event)?:
                views[index].handle(event)
                continue
            case .failure(let error)?:
                views[index].finish(error: error)
                failures.append((models[index], error))
            case nil:
                views[index].finish(error: nil)
            }
            ended += 1
            if ended == models.count { break }
        }
        sink.finish()
        if interrupts.received {
            await haul.shutdown()
            Terminal.standardError.write(
                "\nInterrupted. What was downloaded is kept; run the same command again to resume.\n")
            throw ExitCode(130)
        }
        guard failures.isEmpty else {
            let lines = failures.map { "  \($0.model): " + HaulError.text(of: $0.error) }
            Terminal.standardError.write(
                "Error: \(failures.count) of \(models.count) models failed:\n" + lines.joined(separator: "\n") + "\n")
            throw ExitCode(1)
        }
    }
}

/// A refusal of the command line's input, said in one line.
private struct Refusal: Error, CustomStringConvertible {
    let description: String
}

extension EngineConfiguration.HashMode: ExpressibleByArgument {}
