import ArgumentParser
import Foundation
import HaulKit

struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write models as an OCI image layout (a directory, or a .tar), for air-gapped transfer.",
        discussion: "Readable by OCI tools (skopeo inspect oci:DIR:NAME); bring it back with haul import."
    )

    @Argument(help: "Stored models to export.")
    var models: [String]

    @Option(name: .shortAndLong, help: ArgumentHelp("A new directory, or a file ending in .tar.", valueName: "PATH"))
    var output: String

    func run() throws {
        do {
            let names = try models.map { (text: String) throws(HaulError) in try ModelName(parsing: text) }
            let report = try OCILayout(store: .fromEnvironment()).export(names, to: output)
            print(
                "exported \(report.models.count) model\(report.models.count == 1 ? "" : "s") "
                    + "(\(report.blobs) blobs, \(ByteFormat.decimal(report.bytes))) to \(output)")
        } catch {
            throw fail(error)
        }
    }
}

struct ImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Store the models of an OCI image layout (a directory or a .tar), every blob verified first."
    )

    @Argument(help: "The layout: a directory, or a .tar of one.")
    var path: String

    @OptionGroup var layout: StoreLayoutOption

    func run() throws {
        do {
            let report = try OCILayout(store: layout.store()).importLayout(from: path)
            for name in report.models { print("imported \(name.displayShortest)") }
            print("\(report.blobs) new blobs, \(ByteFormat.decimal(report.bytes))")
        } catch {
            throw fail(error)
        }
    }
}
