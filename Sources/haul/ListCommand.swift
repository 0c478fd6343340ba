import ArgumentParser
import Foundation
import HaulKit

struct ListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List stored models.", aliases: ["ls"])

    func run() throws {
        let models = ModelStore.fromEnvironment().list()
        var rows = [["NAME", "ID", "SIZE", "MODIFIED"]]
        let now = Date()
        for m in models {
            rows.append([m.name.displayShortest, m.id.short, ByteFormat.decimal(m.size),
                         Age.describe(now.timeIntervalSince(m.modified))])
        }
        Table.print(rows)
    }
}

struct RemoveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rm", abstract: "Remove a model and the blobs only it used.")

    @Argument(help: "Models to remove.")
    var names: [String]

    func run() throws {
        let haul = ModelStore.fromEnvironment()
        for name in names {
            do {
                try haul.remove(ModelName(parsing: name))
                print("deleted '\(name)'")
            } catch {
                throw fail(error)
            }
        }
    }
}

/// "2 minutes ago", as ollama list prints.
enum Age {
    static func describe(_ seconds: Double) -> String {
        let s = max(0, Int(seconds))
        func unit(_ n: Int, _ name: String) -> String { n == 1 ? "1 \(name) ago" : "\(n) \(name)s ago" }
        if s < 60 { return s < 2 ? "Less than a second ago" : unit(s, "second") }
        if s < 3600 { return unit(s / 60, "minute") }
        if s < 86400 { return unit(s / 3600, "hour") }
        if s < 86400 * 7 { return unit(s / 86400, "day") }
        if s < 86400 * 30 { return unit(s / (86400 * 7), "week") }
        return unit(s / (86400 * 30), "month")
    }
}
