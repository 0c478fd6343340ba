import ArgumentParser
import Foundation
import HaulKit
import HaulServer

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve Ollama's pull API (/api/pull, /api/tags, /api/show, /api/delete) on $OLLAMA_HOST.",
        discussion: """
            Listens on $OLLAMA_HOST (default 127.0.0.1:11434, Ollama's rules) and stores models in \
            $OLLAMA_MODELS, so Ollama clients pull through Haul unchanged. Requests for the same \
            blobs share one download. OLLAMA_NOPRUNE=1 keeps layers a pull made unused. \
            HAUL_LIMIT_RATE caps the total download rate; HAUL_PULL_THROUGH lets /v2 pull on a miss. \
            /v2 serves models of registry.ollama.ai and hf.co, of HAUL_PULL_THROUGH's registries and of \
            HAUL_SERVE_REGISTRIES (comma-separated); HAUL_NODE_TOKEN makes /v2 require that token. \
            Pulls reach private, loopback and link-local addresses only for the hosts of \
            HAUL_ALLOW_PRIVATE (comma-separated), HAUL_PULL_THROUGH and hosts.toml mirrors, whatever a \
            request's "insecure" says. GET /metrics answers Prometheus' text format (HAUL_METRICS_ADDR \
            moves it to a listener of its own); each pull is logged once, as JSON with HAUL_LOG_FORMAT=json.
            """
    )

    @OptionGroup var tls: TLSOptions

    @OptionGroup var layout: StoreLayoutOption

    @Option(
        help:
            "Parallel range connections across all pulls: the most any server gets, each finding its own count by measuring."
    )
    var connections: Int?

    @Flag(help: "Use --connections for every server, without measuring.")
    var fixed = false

    @Option(
        help: ArgumentHelp(
            "Total download rate of all pulls, bytes per second (500K, 20M, 1G); also HAUL_LIMIT_RATE.",
            valueName: "RATE"))
    var limitRate: String?

    func validate() throws {
        if let connections, !(1...256).contains(connections) {
            throw ValidationError("--connections must be between 1 and 256")
        }
    }

    func run() async throws {
        var environment = ProcessInfo.processInfo.environment
        if let chosen = layout.storeLayout { environment["HAUL_STORE_LAYOUT"] = chosen }
        let host = OllamaHost.fromEnvironment(environment)
        if let warning = host.warning { Terminal.standardError.write("warning: \(warning)\n") }
        try checkRegistryAuth(environment)
        var config = EngineConfiguration.fromEnvironment(environment)
        if let connections { config.connections = connections }
        if fixed { config.adaptiveConnections = false }
        config.maxBytesPerSecond = try parseLimitRate(limitRate, environment)
        tls.apply(to: &config)
        // The daemon's clients are not its operator: only the hosts it
        // lists may be private (HAUL_ALLOW_PRIVATE, HAUL_PULL_THROUGH,
        // hosts.toml mirrors), whatever a request's `insecure` says.
        config.privateAddresses = .daemon(environment)
        let logger = LogFormat.logger(environment, whenUnset: true)!
        let metrics = DaemonMetrics()
        let metricsHost: OllamaHost?
        do throws(ConfigurationError) {
            // Every host list and address the daemon reads, in one grammar:
            // a value it cannot read stops it here, naming the variable.
            for variable in ["HAUL_ALLOW_PRIVATE", "HAUL_PULL_THROUGH", "HAUL_SERVE_REGISTRIES", "HAUL_PUSH_REGISTRIES"]
            {
                _ = try EnvironmentHosts.list(variable, environment)
            }
            metricsHost = try EnvironmentHosts.listenAddress("HAUL_METRICS_ADDR", environment)
        } catch {
            throw ValidationError("\(error)")
        }
        let haul = Haul.fromEnvironment(
            environment, configuration: config, logger: logger,
            metrics: HaulMetrics(factory: metrics.factory))
        let daemon = HaulDaemon(
            haul: haul, host: host, access: .fromEnvironment(environment, listeningOn: host),
            pullThrough: environment["HAUL_PULL_THROUGH"], node: .fromEnvironment(environment),
            writes: .fromEnvironment(environment),
            metrics: metrics, metricsHost: metricsHost, logger: logger
        ) { bound in
            Terminal.standardOutput.write("haul serve: listening on \(bound.clientURL), models in \(haul.store.root)\n")
        }
        do {
            try await daemon.runUntilSignalled()
        } catch {
            throw fail(error)
        }
    }
}
