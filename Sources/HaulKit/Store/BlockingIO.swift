import Dispatch

/// Where file-system work that can block goes: fdatasync and fsync at
/// commit, flock waits on the store's deletion lock, preallocating a large
/// file. Swift's cooperative pool has one thread per core; a call that
/// parks one of them for the length of a disk flush stalls every pull and
/// every daemon request behind it, so async code hands such calls to these
/// threads and awaits the result.
enum BlockingIO {
    private static let queue = DispatchQueue(label: "haul.blocking-io", qos: .utility, attributes: .concurrent)

    static func run<T: Sendable>(_ body: @escaping @Sendable () throws(HaulError) -> T) async throws(HaulError) -> T {
        let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<T, HaulError>, Never>) in
            queue.async { continuation.resume(returning: Result { () throws(HaulError) in try body() }) }
        }
        return try result.get()
    }
}
