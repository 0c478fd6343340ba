import ArgumentParser
import Foundation
import HaulKit

/// What `push` and `copy` share: the destination's credentials and TLS,
/// and how progress is shown.
struct PushOptions: ParsableArguments {
    @Flag(help: "Use plain HTTP to talk to the registries (as ollama push --insecure).")
    var insecure = false

    @Flag(help: "Print the NDJSON lines /api/push would stream, on stdout.")
    var json = false

    @Flag(name: .shortAndLong, help: "Print nothing but errors.")
    var quiet = false

    @Option(
        help:
            "Destination registry username (with --password-stdin); also HAUL_REGISTRY_AUTH=HOST=USER:PASSWORD or docker login."
    )
    var username: String?

    @Flag(help: "Read the destination registry's password from standard input.")
    var passwordStdin = false

    @Option(
        help: ArgumentHelp(
            "The largest request body: blobs go in chunks of this size (default 64M, at least 1M; "
                + "lower it for a proxy that limits bodies).", valueName: "SIZE"))
    var chunkSize: String?

    @OptionGroup var tls: TLSOptions

    func validate() throws {
        if (username != nil) != passwordStdin { throw ValidationError("--username and --password-stdin go together") }
        if let chunkSize {
            guard let bytes = try? ByteRate.parse(chunkSize), bytes >= 1 << 20 else {
                throw ValidationError("--chunk-size \(chunkSize): give a size of at least 1M (16M, 64M, 1G)")
            }
        }
    }

    /// `--chunk-size` in bytes.
    var chunkBytes: Int64? { chunkSize.flatMap { try? ByteRate.parse($0) } }

    /// A `Haul` with the CLI's settings, and `username` for `destination`'s registry.
    func haul(destination: ModelName) throws -> Haul {
        let environment = ProcessInfo.processInfo.environment
        var config = EngineConfiguration.fromEnvironment(environment)
        tls.apply(to: &config)
        try checkRegistryAuth(environment)
        var auth = RegistryAuth.fromEnvironment(environment)
        if let username {
            auth.credentials.explicit[destination.host.lowercased()] = RegistryCredentials(
                username: username, password: readPassword())
        }
        return Haul(
            store: .fromEnvironment(environment), configuration: config,
            prune: !OllamaEnvironment.bool("OLLAMA_NOPRUNE", environment), auth: auth,
            hosts: .fromEnvironment(environment))
    }

    /// Pushes and shows it: NDJSON on stdout, or a line per blob and the
    /// result on stderr.
    func push(_ source: ModelName, to destination: ModelName, with haul: Haul) async throws {
        let interrupts = Interrupts { _ in Task { await haul.shutdown() } }
        var sent: Int64 = 0
        var present: Int64 = 0
        do {
            for try await event in haul.push(source, to: destination, insecure: insecure, chunkSize: chunkBytes) {
                if json {
                    Terminal.standardOutput.write(ProgressJSON.line(for: event) + "\n")
                    continue
                }
                guard !quiet else { continue }
                switch event {
                case .pushing(let digest, let total, let completed) where completed == total:
                    sent += total
                    Terminal.standardError.write("pushed \(digest.short) \(ByteFormat.decimal(total))\n")
                case .present(let digest, let total, let mountedFrom):
                    present += total
                    let how = mountedFrom.map { "mounted from \($0)" } ?? "exists"
                    Terminal.standardError.write("\(how) \(digest.short) \(ByteFormat.decimal(total))\n")
                case .success(let digest):
                    Terminal.standardError.write(
                        "pushed \(source.displayShortest) to \(destination.displayShortest) (\(digest)): "
                            + "\(ByteFormat.decimal(sent)) sent, \(ByteFormat.decimal(present)) already there\n")
                default:
                    break
                }
            }
        } catch {
            if interrupts.received {
                await haul.shutdown()
                Terminal.standardError.write(
                    "\nInterrupted: the registry keeps what it received; run the same command again to go on.\n")
                throw ExitCode(130)
            }
            throw fail(error)
        }
    }
}

/// Reads a password from standard input, without its line ending.
func readPassword() -> String {
    // Trailing CR and LF by scalar: "\r\n" is one Character, which
    // hasSuffix("\n") does not match (a file with Windows line endings).
    var scalars = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self).unicodeScalars
    while let last = scalars.last, last == "\n" || last == "\r" { scalars.removeLast() }
    return String(scalars)
}

struct PushCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "push",
        abstract: "Push a stored model to a registry (any OCI distribution registry).",
        discussion: """
            Without DESTINATION the model goes to the registry its name names (as ollama push). \
            Blobs the registry has are not sent; the others go several at once, in chunks, and a \
            push interrupted at any point goes on from what the registry holds when run again. \
            The manifest is sent byte for byte, so its digest at the destination is the same.
            """
    )

    @Argument(help: "The stored model, e.g. llama3.2.")
    var model: String

    @Argument(help: "Where to, e.g. registry.example:5000/models/llama3.2:1b (default: MODEL's own name).")
    var destination: String?

    @OptionGroup var options: PushOptions

    func run() async throws {
        let source: ModelName
        let target: ModelName
        do {
            source = try ModelName(parsing: model)
            target = try ModelName(parsing: destination ?? model)
        } catch {
            throw fail(error)
        }
        try await options.push(source, to: target, with: try options.haul(destination: target))
    }
}

struct CopyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "copy",
        abstract: "Copy a model from one registry to another, through the store.",
        discussion: """
            Pulls SOURCE (every blob verified, resumable), then pushes it to DESTINATION byte for \
            byte. Credentials for each registry come from HAUL_REGISTRY_AUTH or docker login; \
            --username applies to the destination.
            """
    )

    @Argument(help: "The model at its registry, e.g. registry.ollama.ai/library/llama3.2.")
    var source: String

    @Argument(help: "Where to, e.g. harbor.internal/models/llama3.2.")
    var destination: String

    @Flag(help: "Copy every tag of SOURCE's repository (the registry's tag list), each under its own tag.")
    var allTags = false

    @OptionGroup var options: PushOptions

    func run() async throws {
        let from: ModelName
        let to: ModelName
        do {
            from = try ModelName(parsing: source)
            to = try ModelName(parsing: destination)
        } catch {
            throw fail(error)
        }
        let haul = try options.haul(destination: to)
        var pairs = [(from, to)]
        if allTags {
            let tags: [String]
            do { tags = try await haul.tags(of: from, insecure: options.insecure) } catch { throw fail(error) }
            guard !tags.isEmpty else { throw fail(ValidationError("\(from.host)/\(from.repository) has no tags")) }
            do {
                // The same name under another tag (its scheme, if written, kept).
                func tagged(_ name: ModelName, _ tag: String) throws -> ModelName {
                    try ModelName(
                        parsing: (name.scheme.map { "\($0)://" } ?? "") + "\(name.host)/\(name.repository):\(tag)")
                }
                pairs = try tags.map { tag in (try tagged(from, tag), try tagged(to, tag)) }
            } catch { throw fail(error) }
        }
        for (source, target) in pairs {
            do {
                for try await event in haul.pull(source, insecure: options.insecure) {
                    if options.json, let line = ProgressJSON.line(for: event) {
                        Terminal.standardOutput.write(line + "\n")
                    }
                }
            } catch {
                throw fail(error)
            }
            if !options.quiet && !options.json { Terminal.standardError.write("pulled \(source.displayShortest)\n") }
            try await options.push(source, to: target, with: haul)
        }
    }
}
