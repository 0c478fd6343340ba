import ArgumentParser
import Foundation
import HaulKit

struct VerifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Re-hash stored blobs; report (and with --repair, fetch again) the bad ones.",
        discussion: """
            A blob is stored only after its SHA-256 matched, but the disk or another program can \
            change it later, and its size says nothing. Every blob of the named models (or of \
            all, with --all) is hashed again. A bad one is moved to $OLLAMA_MODELS/.haul/quarantine, \
            so no model goes on using it, and named with the models it breaks; the exit status is \
            then 1. --repair fetches just those blobs again from each model's registry, by the \
            stored manifest.
            """
    )

    @Argument(help: "Models to verify.")
    var names: [String] = []

    @Flag(help: "Verify every stored model.")
    var all = false

    @Flag(help: "Fetch the bad blobs again.")
    var repair = false

    @Flag(help: "Use plain HTTP to talk to the registry when repairing.")
    var insecure = false

    @OptionGroup var tls: TLSOptions

    func validate() throws {
        if all == !names.isEmpty { throw ValidationError("name the models to verify, or use --all") }
    }

    func run() async throws {
        let store = ModelStore.fromEnvironment()
        let stored = store.list()
        var models: [LocalModel] = []
        // Named manifests that cannot be read at all (a link to a missing
        // or wrong blob, a file that does not parse): reported by name.
        var badManifests = all ? store.unreadableManifests() : []
        if all {
            models = stored
        } else {
            for name in names {
                let parsed: ModelName
                do { parsed = try ModelName(parsing: name) } catch { throw fail(error) }
                guard let existing = store.existingName(parsed) else { throw fail(HaulError.modelNotFound(name)) }
                let rows = stored.filter { $0.name == existing }
                if rows.isEmpty {
                    do throws(HaulError) {
                        _ = try store.storedManifest(for: existing).map { (s) throws(HaulError) in try store.runnable(s)
                        }
                    } catch .storedManifest(let path, let problem) {
                        badManifests.append(UnreadableManifest(path: path, problem: problem))
                    } catch {
                        throw fail(error)
                    }
                }
                models += rows
            }
        }
        let err = Terminal.standardError
        let report: BlobVerifier.Report
        do {
            report = try BlobVerifier(store: store).verify(models) { layer in
                err.write("verifying \(layer.digest.short) (\(ByteFormat.decimal(layer.size)))\n")
            }
        } catch {
            throw fail(error)
        }
        err.write("\(report.checked.count) blobs of \(models.count) models checked: \(report.bad.count) bad\n")
        for entry in badManifests {
            err.write(
                "bad manifest: \(entry.path): \(entry.problem); pull the model again or remove it with 'haul rm'\n")
        }
        for finding in report.bad {
            err.write(
                "bad: \(finding.layer.digest.fileName): \(finding.problem); used by "
                    + finding.models.map(\.displayShortest).joined(separator: ", ") + "\n")
        }
        guard !report.bad.isEmpty else {
            if !badManifests.isEmpty { throw ExitCode(1) }
            return
        }
        guard repair else {
            err.write(
                "The bad blobs were moved to \(store.root)/.haul/quarantine. "
                    + "Run 'haul verify --repair' (or pull the models again) to fetch them again.\n")
            throw ExitCode(1)
        }
        let environment = ProcessInfo.processInfo.environment
        var config = EngineConfiguration.fromEnvironment(environment)
        tls.apply(to: &config)
        let haul = Haul(
            store: store, configuration: config, prune: !OllamaEnvironment.bool("OLLAMA_NOPRUNE", environment),
            auth: .fromEnvironment(environment), hosts: .fromEnvironment(environment))
        var broken: [(String, any Error)] = []
        let affected = Array(Set(report.bad.flatMap(\.models))).sorted { $0.displayShortest < $1.displayShortest }
        for name in affected {
            err.write("repairing \(name.displayShortest)\n")
            let view = PlainProgress(terminal: err)
            do {
                for try await event in haul.repair(name, insecure: insecure) { view.handle(event) }
                view.finish(error: nil)
            } catch {
                view.finish(error: error)
                broken.append((name.displayShortest, error))
            }
        }
        await haul.shutdown()
        for (name, error) in broken {
            err.write("Error: \(name): \(HaulError.text(of: error))\n")
        }
        if !broken.isEmpty { throw ExitCode(1) }
    }
}
