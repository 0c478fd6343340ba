import Foundation
import Logging

/// One pull as the log records it, once, when it ends: the model, its
/// manifest digest, the bytes this run downloaded and hashed (and the hash
/// state it resumed from), the seconds it took, the
/// hosts the blobs came from, and the outcome. Fed the pull's events as
/// they pass; a value, so the pull's task owns it.
struct PullRecord: Sendable {
    let asked: String
    let started = MonotonicClock.now()
    private(set) var model: String?
    private(set) var digest: String?
    /// The bytes per blob, counted by the same rules as every progress view.
    private var progress = PullProgress()
    private(set) var hosts: Set<String> = []

    init(asked: String) { self.asked = asked }

    mutating func note(_ event: PullEvent) {
        progress.apply(event, now: 0)
        switch event {
        case .plan(let plan):
            model = plan.name.displayShortest
            digest = plan.manifestDigest.description
        case .source(_, let host):
            // Bounded: one per distinct source host, at most the blobs'.
            if hosts.count < 64 { hosts.insert(host) }
        default:
            break
        }
    }

    /// Bytes this run wrote (what was on disk before it does not count).
    var downloadedBytes: Int64 { progress.downloadedBytes }

    /// The line's metadata: `outcome` is `success` or `failure`, with the
    /// failure's class (`reason`) and text (`error`).
    func metadata(error: (any Error)?) -> Logger.Metadata {
        let seconds = MonotonicClock.now() - started
        var m: Logger.Metadata = [
            "model": .string(model ?? asked),
            "bytes": .stringConvertible(downloadedBytes),
            "hashed": .stringConvertible(progress.hashedBytes),
            "resumed_hashed": .stringConvertible(progress.resumedHashedBytes),
            "seconds": .string(String(format: "%.3f", seconds)),
            "sources": .array(hosts.sorted().map { .string($0) }),
            "outcome": .string(error == nil ? "success" : "failure")
        ]
        if let digest { m["digest"] = .string(digest) }
        if let error {
            m["reason"] = .string(HaulMetrics.reason(error))
            m["error"] = .string(HaulError.text(of: error))
        }
        return m
    }
}
