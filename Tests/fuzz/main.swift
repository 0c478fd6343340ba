// libFuzzer entry point for `make fuzz`; HAUL_FUZZ_TARGET picks the target.
import Foundation

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
