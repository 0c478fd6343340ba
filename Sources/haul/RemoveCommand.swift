import ArgumentParser
import Foundation
import HaulKit

struct RemoveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rm", abstract: "Remove a model and the blobs only it used.")

    @Argument(help: "Models to remove.")
    var names: [String]

    func run() throws {
        let store = ModelStore.fromEnvironment()
        for name in names {
            do {
                let removal = try store.remove(ModelName(parsing: name))
                print("deleted '\(name)'")
                if let first = removal.unreadable.first {
                    Terminal.standardError.write(
                        "note: " + ModelStore.sweepNotice(first, count: removal.unreadable.count) + "\n")
                }
            } catch {
                throw fail(error)
            }
        }
    }
}
