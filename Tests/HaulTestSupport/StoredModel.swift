import Foundation
import HaulKit

/// Writes a model straight into a store in Ollama's layout (blobs, then
/// the manifest), for tests of what reads the store: no registry, no pull.
package enum StoredModel {
    /// `layers` as (media type, content); returns the manifest's digest.
    @discardableResult
    package static func write(
        _ name: String, layers: [(String, String)], into store: ModelStore,
        config configText: String = #"{"model_format":"gguf","model_family":"llama"}"#
    ) throws -> Digest {
        let parsed = try ModelName(parsing: name)
        func blob(_ mediaType: String, _ text: String) throws -> String {
            let bytes = Array(text.utf8)
            let digest = Digest(hashing: bytes)
            try FileManager.default.createDirectory(atPath: store.blobsDirectory, withIntermediateDirectories: true)
            try Data(bytes).write(to: URL(fileURLWithPath: store.blobPath(digest)))
            return #"{"mediaType":"\#(mediaType)","digest":"\#(digest)","size":\#(bytes.count)}"#
        }
        let config = try blob("application/vnd.docker.container.image.v1+json", configText)
        let entries = try layers.map { try blob($0.0, $0.1) }
        let manifest =
            #"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":\#(config),"layers":[\#(entries.joined(separator: ","))]}"#
        try store.writeManifest(Manifest(bytes: Array(manifest.utf8)), for: parsed)
        return Digest(hashing: Array(manifest.utf8))
    }
}
