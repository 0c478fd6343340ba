import ArgumentParser
import Foundation
import HaulKit

/// `--store-layout` for the commands that write manifests (`pull`,
/// `import`, `serve`); `HAUL_STORE_LAYOUT` when not given.
struct StoreLayoutOption: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            """
            Which layout new manifests are written in: auto (v2 when the store has a manifests-v2 directory, \
            as an Ollama 0.40 or later store has; v1 otherwise), v1 (manifests/, Ollama before 0.40) or \
            v2 (manifests-v2/ links to manifest blobs, with a legacy copy). Default: $HAUL_STORE_LAYOUT, else auto.
            """, valueName: "auto|v1|v2"))
    var storeLayout: String?

    func validate() throws {
        if let storeLayout, StoreLayout(rawValue: storeLayout.lowercased()) == nil {
            throw ValidationError("--store-layout \(storeLayout): give auto, v1 or v2")
        }
        if let value = ProcessInfo.processInfo.environment["HAUL_STORE_LAYOUT"], !value.isEmpty,
            StoreLayout(rawValue: value.lowercased()) == nil
        {
            throw ValidationError("HAUL_STORE_LAYOUT=\(value): give auto, v1 or v2")
        }
    }

    /// The store of `$OLLAMA_MODELS`, writing the chosen layout.
    func store(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> ModelStore {
        let store = ModelStore.fromEnvironment(environment)
        guard let storeLayout, let layout = StoreLayout(rawValue: storeLayout.lowercased()) else { return store }
        return store.with(layout: layout)
    }
}
