import ArgumentParser
import Foundation
import HaulKit

struct ListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "List stored models.", aliases: ["ls"])

    @Flag(help: "Ask each model's registry whether its tag moved on (HEAD of the manifest); `haul pull --all` updates.")
    var outdated = false

    @Flag(help: "With --outdated: plain HTTP to the registries (as ollama pull --insecure).")
    var insecure = false

    @Option(help: ArgumentHelp("With --outdated: mirror configuration directories (as haul pull).", valueName: "DIRS"))
    var hostsDir: String?

    func run() async throws {
        if outdated { return try await listOutdated() }
        let models = ModelStore.fromEnvironment().list()
        var rows = [["NAME", "ID", "SIZE", "MODIFIED"]]
        let now = Date()
        for m in models {
            rows.append([
                m.name.displayShortest, m.id.short, ByteFormat.decimal(m.size),
                Age.describe(now.timeIntervalSince(m.modified))
            ])
        }
        Table.print(rows)
    }

    /// Every stored model against its registry, concurrently; a registry
    /// that cannot be reached is said for its models, not fatal.
    private func listOutdated() async throws {
        let environment = ProcessInfo.processInfo.environment
        try checkRegistryAuth(environment)
        let hosts =
            hostsDir.map { HostsDirectory(directories: $0.split(separator: ":").map(String.init)) }
            ?? .fromEnvironment(environment)
        let haul = Haul(
            store: .fromEnvironment(environment), configuration: .fromEnvironment(environment),
            auth: .fromEnvironment(environment), hosts: hosts)
        // One question per name: a list's children share their tag.
        var seen = Set<ModelName>()
        let models = haul.store.list().filter { seen.insert($0.name).inserted }
        let insecure = insecure
        let states = await withTaskGroup(of: (Int, String, String).self) { group in
            for (index, model) in models.enumerated() {
                group.addTask {
                    do {
                        let remote = try await haul.remoteDigest(of: model.name, insecure: insecure)
                        return (index, remote.short, remote == model.tagDigest ? "up to date" : "outdated")
                    } catch {
                        let message = HaulError.text(of: error)
                        return (index, "-", "unreachable: " + message.prefix(160))
                    }
                }
            }
            var out = [(String, String)](repeating: ("", ""), count: models.count)
            for await (index, remote, state) in group { out[index] = (remote, state) }
            return out
        }
        await haul.shutdown()
        var rows = [["NAME", "ID", "REMOTE", "STATUS"]]
        for (model, state) in zip(models, states) {
            rows.append([model.name.displayShortest, model.tagDigest.short, state.0, state.1])
        }
        Table.print(rows)
    }
}
