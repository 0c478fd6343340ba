import Foundation
import HaulTestSupport
import Testing

@testable import HaulKit

/// Which hosts are Hugging Face, where HF_TOKEN comes from, and what
/// HF_ENDPOINT turns into.
struct HuggingFaceConfigTests {
    @Test func theTokenComesFromTheVariableThenTheFileHFsToolsWrite() throws {
        let home = TempDir("haul-hf-home")
        try FileManager.default.createDirectory(
            atPath: home.sub(".cache/huggingface"), withIntermediateDirectories: true)
        try " hf_fromFile \n".write(toFile: home.sub(".cache/huggingface/token"), atomically: true, encoding: .utf8)
        #expect(HuggingFace.fromEnvironment(["HOME": home.path]).token == "hf_fromFile")
        #expect(HuggingFace.fromEnvironment(["HOME": home.path, "HF_TOKEN": "hf_env"]).token == "hf_env")
        #expect(HuggingFace.fromEnvironment(["HOME": home.path, "HF_TOKEN": "  "]).token == "hf_fromFile")
        try "hf_other".write(toFile: home.sub("elsewhere"), atomically: true, encoding: .utf8)
        #expect(
            HuggingFace.fromEnvironment(["HOME": home.path, "HF_TOKEN_PATH": home.sub("elsewhere")]).token == "hf_other"
        )
        #expect(HuggingFace.fromEnvironment(["HOME": home.path, "HF_HOME": home.sub("none")]).token == nil)
        #expect(
            HuggingFace.fromEnvironment(["HOME": home.path, "HF_ENDPOINT": " https://m.example "]).endpoint
                == "https://m.example")
    }

    @Test func hfsHostsAndTheEndpointAreOneParty() {
        let hf = HuggingFace(endpoint: "https://hf-mirror.example:8443/base")
        for url in [
            "https://hf.co/v2/token", "https://HuggingFace.co/v2/token", "https://huggingface.co:443/x",
            "https://hf-mirror.example:8443/v2/token"
        ] {
            #expect(hf.includes(url), "\(url)")
        }
        for url in [
            "http://hf.co/v2/token", "https://hf.co:8443/", "https://evil.hf.co/",
            "https://huggingface.co.evil.example/",
            "https://hf-mirror.example/v2/token", "not a url"
        ] {
            #expect(!hf.includes(url), "\(url)")
        }
        #expect(!HuggingFace().includes("https://hf-mirror.example:8443/"))
    }

    @Test func aTokenThatWouldBreakTheHeaderIsRefused() throws {
        #expect(try HuggingFace(token: "hf_ok").tokenAuthorization() == "Bearer hf_ok")
        #expect(try HuggingFace().tokenAuthorization() == nil)
        #expect(throws: HaulError.authentication("HF_TOKEN holds characters a Hugging Face token cannot have")) {
            try HuggingFace(token: "hf_x\r\nX-Evil: 1").tokenAuthorization()
        }
    }

    @Test func theEndpointIsAMirrorOfHFsNamesOnly() throws {
        let hf = HuggingFace(endpoint: "https://hf-mirror.example/")
        let mirror = try #require(try hf.mirror(for: ModelName(parsing: "hf.co/u/r:Q4_K_M")))
        #expect(mirror.root == "https://hf-mirror.example/v2" && mirror.isMirror && mirror.capabilities == .all)
        #expect(try hf.mirror(for: ModelName(parsing: "huggingface.co/u/r")) != nil)
        #expect(try hf.mirror(for: ModelName(parsing: "llama3.2")) == nil)
        #expect(try hf.mirror(for: ModelName(parsing: "ghcr.io/u/r")) == nil)
        // HF itself is no mirror of HF.
        #expect(try HuggingFace(endpoint: "https://huggingface.co").mirror(for: ModelName(parsing: "hf.co/u/r")) == nil)
        #expect(throws: HaulError.self) {
            try HuggingFace(endpoint: "hf-mirror.example").mirror(for: ModelName(parsing: "hf.co/u/r"))
        }
        #expect(throws: HaulError.self) {
            try HuggingFace(endpoint: "https://m.example/?x=1").mirror(for: ModelName(parsing: "hf.co/u/r"))
        }
    }
}
