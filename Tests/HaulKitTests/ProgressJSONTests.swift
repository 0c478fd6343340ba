import Testing

@testable import HaulKit

@Suite struct ProgressJSONTests {
    let digest = try! Digest(parsing: "sha256:" + String(repeating: "ab", count: 32))

    @Test func linesMatchOllamasStream() {
        #expect(ProgressJSON.line(for: .pullingManifest) == #"{"status":"pulling manifest"}"#)
        #expect(ProgressJSON.line(for: .verifying) == #"{"status":"verifying sha256 digest"}"#)
        #expect(ProgressJSON.line(for: .writingManifest) == #"{"status":"writing manifest"}"#)
        #expect(ProgressJSON.line(for: .success) == #"{"status":"success"}"#)
        let p = BlobProgress(digest: digest, total: 2_000, completed: 500, hashed: 0)
        #expect(
            ProgressJSON.line(for: .progress(p))
                == #"{"status":"pulling ababababab","digest":"sha256:\#(String(repeating: "ab", count: 32))","total":2000,"completed":500}"#
                .replacingOccurrences(of: "pulling ababababab", with: "pulling abababababab"))
    }

    @Test func completedIsOmittedWhenZero() {
        let line = ProgressJSON.line(for: .progress(BlobProgress(digest: digest, total: 10, completed: 0, hashed: 0)))!
        #expect(!line.contains("completed"))
        #expect(line.hasSuffix(#""total":10}"#))
    }

    @Test func errorsAreEscaped() {
        #expect(ProgressJSON.error("a \"b\"\n\u{1}") == #"{"error":"a \"b\"\n\u0001"}"#)
    }

    /// Haul's own fields (`model`, `host`) are written for `haul pull
    /// --json`, and a server's line is read for Ollama's alone: a server
    /// that sends those names with other types is still understood, as
    /// before they were written.
    @Test func haulsOwnFieldsAreWrittenButNotReadFromAServer() throws {
        let source = try #require(ProgressJSON.line(for: .source(digest: digest, host: "cdn.example"), model: "m"))
        #expect(source == #"{"model":"m","status":"source","digest":"\#(digest)","host":"cdn.example"}"#)
        let line = #"{"status":"pulling manifest","model":7,"host":["x"]}"#
        #expect(try ProgressJSON.parse(Array(line.utf8)) == .event(.pullingManifest))
    }

    @Test func byteFormatIsDecimalLikeOllama() {
        #expect(ByteFormat.decimal(999) == "999 B")
        #expect(ByteFormat.decimal(2_019_377_376) == "2.0 GB")
        #expect(ByteFormat.decimal(11_355) == "11.4 KB")
        #expect(ByteFormat.decimal(315_000_000) == "315 MB")
    }

    @Test func errorTextsAreOllamas() throws {
        let want = try Digest(parsing: "sha256:" + String(repeating: "a", count: 64))
        let got = try Digest(parsing: "sha256:" + String(repeating: "b", count: 64))
        #expect(
            HaulError.digestMismatch(want: want, got: got).description
                == "digest mismatch, file must be downloaded again: want \(want), got \(got)")
        #expect(HaulError.manifestNotFound.description == "pull model manifest: file does not exist")
        #expect(HaulError.manifestStatus(412, body: "too old").description == "pull model manifest: 412: too old")
        #expect(
            HaulError.io(operation: "write", path: "/m/x", errno: 28).description
                == "write /m/x: no space left on device")
        #expect(HaulError.retriesExhausted(want, lastError: "EOF").description == "max retries exceeded: EOF")
    }
}
