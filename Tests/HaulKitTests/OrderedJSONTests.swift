import Foundation
import Testing

@testable import HaulKit

/// The JSON writer of every Ollama-shaped response and line: Go's field
/// order, every run alike (Foundation's JSONEncoder changes its key order
/// from run to run), nil optionals left out, Haul's string escaping.
@Suite struct OrderedJSONTests {
    struct Progress: Encodable {
        let status: String
        var digest: String?
        var total: Int64?
        var completed: Int64?
    }

    struct Nested: Encodable {
        let zeta: Int
        let alpha: [Progress]
        let middle: [String: Bool]?
        let ratio: Double
        let flag: Bool
        let nothing: String?
    }

    @Test func fieldsComeInDeclarationOrderEveryTime() throws {
        let line = Progress(status: "pulling 0123456789ab", digest: "sha256:x", total: 5, completed: 3)
        for _ in 0..<50 {
            #expect(
                try OrderedJSONEncoder().encodeToString(line)
                    == #"{"status":"pulling 0123456789ab","digest":"sha256:x","total":5,"completed":3}"#)
        }
        #expect(try OrderedJSONEncoder().encodeToString(Progress(status: "success")) == #"{"status":"success"}"#)
    }

    @Test func nestedValuesNumbersAndNulls() throws {
        let value = Nested(
            zeta: -1, alpha: [Progress(status: "a"), Progress(status: "b", total: 2)], middle: nil, ratio: 0.25,
            flag: false, nothing: nil)
        #expect(
            try OrderedJSONEncoder().encodeToString(value)
                == #"{"zeta":-1,"alpha":[{"status":"a"},{"status":"b","total":2}],"ratio":0.25,"flag":false}"#)
        // Integral floats are written as Go writes them, without a fraction.
        #expect(try OrderedJSONEncoder().encodeToString([500000.0, 1.5, -0.125]) == "[500000,1.5,-0.125]")
        #expect(throws: EncodingError.self) { try OrderedJSONEncoder().encodeToString([Double.nan]) }
        // A float32 at its own precision goes through Decimal.
        #expect(
            try OrderedJSONEncoder().encodeToString([Decimal(string: "1e-05")!, Decimal(500000)]) == "[0.00001,500000]")
    }

    @Test func stringsAreEscapedAsEveryLineEscapesThem() throws {
        let text = "a \"b\"\n\t\r\\ \u{1} </script> é/ü"
        #expect(
            try OrderedJSONEncoder().encodeToString(["error": text])
                == #"{"error":"a \"b\"\n\t\r\\ \u0001 </script> é/ü"}"#)
        #expect(text.goQuoted == #""a \"b\"\n\t\r\\ \u0001 </script> é/ü""#)
        // What the encoder writes, Foundation reads back as it was.
        let data = try OrderedJSONEncoder().encode(["error": text])
        #expect(try JSONDecoder().decode([String: String].self, from: data) == ["error": text])
    }

    /// Go writes a map's keys sorted; a Swift dictionary's order changes.
    @Test func dictionariesAreWrittenWithSortedKeys() throws {
        let map = ["general.architecture": "llama", "a": "first", "z.last": "end", "m": "middle"]
        for _ in 0..<20 {
            #expect(
                try OrderedJSONEncoder().encodeToString(["model_info": map])
                    == #"{"model_info":{"a":"first","general.architecture":"llama","m":"middle","z.last":"end"}}"#)
        }
    }

    @Test func aFragmentIsPlacedAsItIs() throws {
        struct Wrapper: Encodable {
            let manifests: [JSONFragment]
            let license: String?
        }
        let inner = try OrderedJSONEncoder().encode(Progress(status: "x", digest: "y"))
        #expect(
            try OrderedJSONEncoder().encodeToString(Wrapper(manifests: [JSONFragment(inner)], license: "MIT"))
                == #"{"manifests":[{"status":"x","digest":"y"}],"license":"MIT"}"#)
    }

    /// A verbose `/api/show` carries arrays of 150,000 tokens: building
    /// them is linear (a quadratic writer would take minutes here).
    @Test func largeArraysAreBuiltInLinearTime() throws {
        let tokens = (0..<300_000).map { "tok\($0)" }
        let start = ContinuousClock.now
        let text = try OrderedJSONEncoder().encodeToString(["tokens": tokens])
        #expect(text.hasPrefix(#"{"tokens":["tok0","tok1","#) && text.hasSuffix(#""tok299999"]}"#))
        #expect(ContinuousClock.now - start < .seconds(20))
    }
}
