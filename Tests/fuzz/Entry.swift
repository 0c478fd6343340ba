// The entry of `haul-fuzz`. Under `make fuzz` (-D FUZZING, linked with
// libFuzzer, which supplies `main`) it is libFuzzer's callback, and
// HAUL_FUZZ_TARGET picks the target. In a plain debug build it replays
// files through a target: `haul-fuzz TARGET FILE...`, which is how a
// crash libFuzzer found is reproduced under the debugger.
#if DEBUG
import Foundation

#if FUZZING
private let target: @Sendable ([UInt8]) -> Void = {
    let name = ProcessInfo.processInfo.environment["HAUL_FUZZ_TARGET"] ?? ""
    guard let t = FuzzTargets.all[name] else {
        fatalError("HAUL_FUZZ_TARGET must be one of \(FuzzTargets.all.keys.sorted())")
    }
    return t
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func haulFuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    target(data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? [])
    return 0
}
#else
@main enum Replay {
    static func main() throws {
        let args = CommandLine.arguments.dropFirst()
        guard let name = args.first, let target = FuzzTargets.all[name] else {
            print("usage: haul-fuzz TARGET FILE... (targets: \(FuzzTargets.all.keys.sorted().joined(separator: ", ")))")
            exit(2)
        }
        for path in args.dropFirst() {
            target(Array(try Data(contentsOf: URL(fileURLWithPath: path))))
            print("\(path): invariants kept")
        }
    }
}
#endif
#else
// A release build: the fuzz targets need HaulKit compiled for testing.
@main enum Replay {
    static func main() {
        print("haul-fuzz is a debug-build tool: run `make fuzz`, or `swift run haul-fuzz TARGET FILE...`")
    }
}
#endif
