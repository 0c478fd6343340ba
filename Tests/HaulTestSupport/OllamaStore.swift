import Foundation
import HaulKit

/// Builds a models directory the way Ollama ≥ 0.40 lays one out, written
/// here independently of Haul's own writer (Ollama's `manifest/paths.go`
/// and `manifest/manifest.go` in PR #16590):
///
///     blobs/sha256-<hex>                                 layers, configs, manifest blobs
///     manifests-v2/<host with %3A>/<ns>/<model>/<tag>    -> ../../../../blobs/sha256-<hex>
///     manifests/<host>/<ns>/<model>/<tag>                legacy bytes
///
/// with the public registry written `ollama.com` in `manifests-v2/`.
package struct OllamaStore {
    package let store: ModelStore
    package var root: String { store.root }

    /// How a v2 entry is made (Ollama tries them in this order).
    package enum Entry { case symlink, hardLink, copy }

    /// A list child: a reference to a manifest blob (stored or not), or an
    /// inline manifest.
    package enum Child {
        case reference(manifest: [UInt8], runner: String, stored: Bool)
        case inline(manifest: [UInt8], runner: String)
    }

    package static let gguf = #"{"model_format":"gguf","model_family":"llama","model_type":"1B","file_type":"Q4_0"}"#
    package static let dockerManifest = "application/vnd.docker.distribution.manifest.v2+json"

    /// A store with `blobs/`, `manifests/` and `manifests-v2/` (Ollama's
    /// `V2Path` makes the last whenever it looks a name up).
    package init(_ root: String, v2: Bool = true) throws {
        store = ModelStore(root: root)
        for directory in ["blobs", "manifests"] + (v2 ? ["manifests-v2"] : []) {
            try FileManager.default.createDirectory(atPath: root + "/" + directory, withIntermediateDirectories: true)
        }
    }

    /// Stores `bytes` as a blob; its layer entry.
    @discardableResult
    package func blob(_ bytes: [UInt8], mediaType: String = "application/vnd.ollama.image.model") throws -> Layer0 {
        let digest = Digest(hashing: bytes)
        let path = store.blobPath(digest)
        if !FileManager.default.fileExists(atPath: path) {
            try Data(bytes).write(to: URL(fileURLWithPath: path))
        }
        return Layer0(mediaType: mediaType, digest: digest, size: bytes.count)
    }

    /// A layer's JSON form, for building manifests.
    package struct Layer0: Equatable {
        package let mediaType: String
        package let digest: Digest
        package let size: Int
        package var json: String { #"{"mediaType":"\#(mediaType)","digest":"\#(digest)","size":\#(size)}"# }
    }

    /// A runnable manifest over `layers` (each stored as a blob) and a GGUF
    /// config, with an optional `runner` field as Ollama ≥ 0.40 writes.
    package func image(_ layers: [(String, String)], config: String = gguf, runner: String? = nil) throws -> (
        bytes: [UInt8], layers: [Layer0]
    ) {
        let configLayer = try blob(Array(config.utf8), mediaType: "application/vnd.docker.container.image.v1+json")
        let stored = try layers.map { try blob(Array($0.1.utf8), mediaType: $0.0) }
        var text =
            #"{"schemaVersion":2,"mediaType":"\#(Self.dockerManifest)","config":\#(configLayer.json),"layers":[\#(stored.map(\.json).joined(separator: ","))]"#
        if let runner { text += #","runner":"\#(runner)""# }
        return (Array((text + "}").utf8), stored + [configLayer])
    }

    /// A manifest list of `children`; reference children marked `stored`
    /// are written as blobs.
    package func list(_ children: [Child]) throws -> [UInt8] {
        var entries: [String] = []
        for child in children {
            switch child {
            case .reference(let manifest, let runner, let stored):
                if stored { try blob(manifest) }
                entries.append(
                    #"{"mediaType":"\#(Self.dockerManifest)","digest":"\#(Digest(hashing: manifest))","runner":"\#(runner)","format":"gguf"}"#
                )
            case .inline(let manifest, let runner):
                var object = String(decoding: manifest, as: UTF8.self)
                object.removeLast()
                entries.append(object + #","runner":"\#(runner)"}"#)
            }
        }
        return Array(
            #"{"schemaVersion":2,"mediaType":"application/vnd.ollama.manifest.list.v2+json","manifests":[\#(entries.joined(separator: ","))]}"#
                .utf8)
    }

    /// `manifests-v2/…` for `name`, as Ollama's `V2PathForName` spells it.
    package func v2Path(_ name: String) throws -> String {
        let n = try ModelName(parsing: name)
        let publicHost = ["registry.ollama.ai", "ollama.com"].contains(n.host.lowercased())
        let host = (publicHost ? "ollama.com" : n.host).replacingOccurrences(of: ":", with: "%3A")
        return [root, "manifests-v2", host, n.namespace, n.model, n.tag].joined(separator: "/")
    }

    /// `manifests/…` for `name`, under `host` when given (the public
    /// registry's other spelling, say).
    package func legacyPath(_ name: String, host: String? = nil) throws -> String {
        let n = try ModelName(parsing: name)
        return [root, "manifests", host ?? n.host, n.namespace, n.model, n.tag].joined(separator: "/")
    }

    /// A v2 entry: the bytes as a blob, the entry a relative link to it
    /// (or a hard link, or a copy).
    @discardableResult
    package func linkV2(_ name: String, _ bytes: [UInt8], as entry: Entry = .symlink) throws -> String {
        let digest = try blob(bytes).digest
        let path = try v2Path(name)
        try FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try? FileManager.default.removeItem(atPath: path)
        switch entry {
        case .symlink:
            try FileManager.default.createSymbolicLink(
                atPath: path, withDestinationPath: "../../../../blobs/sha256-" + digest.hex)
        case .hardLink: try FileManager.default.linkItem(atPath: store.blobPath(digest), toPath: path)
        case .copy: try Data(bytes).write(to: URL(fileURLWithPath: path))
        }
        return path
    }

    /// A legacy file holding `bytes`.
    @discardableResult
    package func legacy(_ name: String, _ bytes: [UInt8], host: String? = nil) throws -> String {
        let path = try legacyPath(name, host: host)
        try FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// A link at `name`'s v2 path with `target` as its text, whatever it is.
    @discardableResult
    package func rawLink(_ name: String, to target: String) throws -> String {
        let path = try v2Path(name)
        try FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try? FileManager.default.removeItem(atPath: path)
        try FileManager.default.createSymbolicLink(atPath: path, withDestinationPath: target)
        return path
    }

    /// Whether the blob is there and hashes to its name.
    package func intact(_ digest: Digest) -> Bool {
        guard let data = FileManager.default.contents(atPath: store.blobPath(digest)) else { return false }
        return Digest(hashing: Array(data)) == digest
    }
}

/// What must hold of a store after any operation, finished or killed:
/// every named manifest reads, neither tree holds a stray file (a
/// temporary that Ollama would list as a model or that would stop its
/// garbage collection), and every blob a listed model uses is there and
/// hashes to its name.
package enum StoreCheck {
    package static func problems(_ store: ModelStore, allowUnreadable: Set<String> = []) -> [String] {
        var out = store.unreadableManifests().filter { !allowUnreadable.contains($0.path) }.map { "unreadable: \($0)" }
        for tree in [store.manifestsDirectory, store.manifestsV2Directory] {
            for file in listFiles(tree) {
                let parts = file.split(separator: "/").map(String.init)
                if parts.count != 4 || parts[3].hasPrefix(".") {
                    out.append("stray file in \(tree): \(file)")
                }
            }
        }
        for model in store.list() {
            for layer in ((try? model.manifest.blobs) ?? []) + model.manifestBlobs {
                guard let data = FileManager.default.contents(atPath: store.blobPath(layer.digest)) else {
                    out.append("\(model.name.displayShortest): \(layer.digest.short) missing")
                    continue
                }
                if Digest(hashing: Array(data)) != layer.digest {
                    out.append("\(model.name.displayShortest): \(layer.digest.short) does not hash to its name")
                }
            }
        }
        return out
    }
}
