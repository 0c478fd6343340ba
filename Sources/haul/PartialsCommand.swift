import ArgumentParser
import Foundation
import HaulKit

struct PartialsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "partials",
        abstract: "List or delete interrupted downloads.",
        discussion: """
            Interrupted blob downloads are kept in $OLLAMA_MODELS/.haul/partials, where \
            'ollama serve' does not prune them; 'haul pull' resumes them. The copies of an \
            interrupted 'haul import' are listed too; the next import or pull removes them. \
            So are uploads an interrupted 'haul push' left open at a registry.
            """,
        subcommands: [List.self, Remove.self],
        defaultSubcommand: List.self
    )

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list", abstract: "List interrupted downloads.",
            aliases: ["ls"])

        @Flag(help: "Print JSON (downloads, imports, uploads), exact byte counts instead of a table.")
        var json = false

        func run() throws {
            let now = Date()
            let store = ModelStore.fromEnvironment()
            if json {
                print(try PartialsJSON(store: store).encoded())
                return
            }
            var rows = [["DIGEST", "MODEL", "PROGRESS", "ON DISK", "MODIFIED"]]
            for p in store.partials() {
                let percent = p.size > 0 ? Int(Double(p.completed) * 100 / Double(p.size)) : 0
                let progress = "\(ByteFormat.decimal(p.completed))/\(ByteFormat.decimal(p.size)) (\(percent)%)"
                rows.append([
                    p.digest.short, p.model ?? "?", progress, ByteFormat.decimal(p.allocated),
                    p.inUse ? "downloading now" : Age.describe(now.timeIntervalSince(p.modified))
                ])
            }
            // Copies an import made before it was stopped: nothing resumes
            // them, so they are named to be deleted.
            for staged in store.stagedImports() {
                rows.append([
                    staged.name, staged.inUse ? "(import)" : "(interrupted import)", "-",
                    ByteFormat.decimal(staged.allocated),
                    staged.inUse ? "importing now" : Age.describe(now.timeIntervalSince(staged.modified))
                ])
            }
            // Uploads a push left open: the registry holds their bytes;
            // the same push run again continues them.
            for upload in store.pendingUploads() {
                rows.append([
                    upload.digest.short,
                    "(push to \(upload.registry.split(separator: "/").last ?? "")/\(upload.repository))", "-",
                    ByteFormat.decimal(upload.size), "at the registry"
                ])
            }
            Table.print(rows)
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "rm", abstract: "Delete interrupted downloads.")

        @Flag(help: "Delete every interrupted download not in use.")
        var all = false

        @Argument(
            help:
                "Digests (or unique prefixes of their hex, as 'haul partials' shows them), or an interrupted import's name (import-…)."
        )
        var digests: [String] = []

        func validate() throws {
            if all == !digests.isEmpty { throw ValidationError("give digests or --all, not both or neither") }
        }

        func run() throws {
            let store = ModelStore.fromEnvironment()
            let partials = store.partials()
            var targets: [PartialDownload] = []
            var imports: [StagedImport] = []
            if all {
                targets = partials.filter { !$0.inUse }
                imports = store.stagedImports().filter { !$0.inUse }
            } else {
                for text in digests {
                    if let staged = store.stagedImports().first(where: { $0.name == text }) {
                        imports.append(staged)
                        continue
                    }
                    let hex = text.hasPrefix("sha256:") ? String(text.dropFirst(7)) : text
                    let matches = partials.filter { $0.digest.hex.hasPrefix(hex.lowercased()) }
                    guard matches.count == 1, !hex.isEmpty else {
                        throw fail(
                            ValidationError(
                                matches.isEmpty
                                    ? "no partial download matches '\(text)'"
                                    : "'\(text)' matches several partial downloads"))
                    }
                    targets.append(matches[0])
                }
            }
            for p in targets {
                do {
                    try store.removePartial(p.digest)
                    print("deleted partial \(p.digest.short) (\(ByteFormat.decimal(p.allocated)))")
                } catch {
                    throw fail(error)
                }
            }
            for staged in imports {
                do {
                    try store.removeStagedImport(staged.name)
                    print("deleted interrupted import \(staged.name) (\(ByteFormat.decimal(staged.allocated)))")
                } catch {
                    throw fail(error)
                }
            }
        }
    }
}

/// Column-aligned output, as `ollama list` prints it.
enum Table {
    static func print(_ rows: [[String]]) {
        guard let columns = rows.first?.count else { return }
        let widths = (0..<columns).map { c in rows.map { $0[c].count }.max() ?? 0 }
        for row in rows {
            let line = row.enumerated().map { i, cell in
                i == row.count - 1 ? cell : cell.padding(toLength: widths[i] + 4, withPad: " ", startingAt: 0)
            }.joined()
            Swift.print(line)
        }
    }
}

/// `haul partials --json`: what the table shows, in exact numbers, for
/// scripts (the bench polls it to kill a pull half way and reads how much a
/// resume keeps), so nothing outside HaulKit reads a resume journal.
struct PartialsJSON: Encodable {
    struct Download: Encodable {
        let digest: String
        let model: String?
        let size: Int64
        /// Bytes a resume keeps.
        let completed: Int64
        /// Bytes from the start whose hash state is kept.
        let hashed: Int64
        let allocated: Int64
        let in_use: Bool
        let modified: Double
    }

    struct Import: Encodable {
        let name: String
        let allocated: Int64
        let in_use: Bool
        let modified: Double
    }

    struct Upload: Encodable {
        let digest: String
        let registry: String
        let repository: String
        let size: Int64
    }

    let downloads: [Download]
    let imports: [Import]
    let uploads: [Upload]

    init(store: ModelStore) {
        downloads = store.partials().map {
            Download(
                digest: $0.digest.description, model: $0.model, size: $0.size, completed: $0.completed,
                hashed: $0.hashed, allocated: $0.allocated, in_use: $0.inUse,
                modified: $0.modified.timeIntervalSince1970)
        }
        imports = store.stagedImports().map {
            Import(
                name: $0.name, allocated: $0.allocated, in_use: $0.inUse, modified: $0.modified.timeIntervalSince1970)
        }
        uploads = store.pendingUploads().map {
            Upload(digest: $0.digest.description, registry: $0.registry, repository: $0.repository, size: $0.size)
        }
    }

    func encoded() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }
}
