import ArgumentParser
import HaulKit

@main
struct HaulCLI: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "haul",
        abstract: "Pull models from Ollama-style registries into $OLLAMA_MODELS.",
        subcommands: [
            PullCommand.self, PushCommand.self, CopyCommand.self, ServeCommand.self, ListCommand.self,
            RemoveCommand.self, VerifyCommand.self, PartialsCommand.self,
            ExportCommand.self, ImportCommand.self
        ]
    )
}

/// Refuses a malformed HAUL_REGISTRY_AUTH at once, rather than pulling
/// without the credentials it meant to give.
func checkRegistryAuth(_ environment: [String: String]) throws {
    do {
        _ = try CredentialSource.parse(registryAuth: environment["HAUL_REGISTRY_AUTH"] ?? "")
    } catch {
        throw fail(error)
    }
}

/// `--limit-rate`, else `HAUL_LIMIT_RATE`: bytes per second for every
/// connection of every pull together; nil for no limit. A malformed value
/// is refused before anything starts.
func parseLimitRate(_ option: String?, _ environment: [String: String]) throws -> Int64? {
    guard let text = option ?? environment["HAUL_LIMIT_RATE"], !text.isEmpty else { return nil }
    do {
        return try ByteRate.parse(text)
    } catch {
        throw fail(error)
    }
}

/// Prints `Error: <message>` the way the ollama CLI does and exits non-zero.
func fail(_ error: any Error) -> ExitCode {
    let message = HaulError.text(of: error)
    Terminal.standardError.write("Error: \(message)\n")
    return ExitCode(1)
}
