@testable import HaulKit

/// Stands in for the loop and curl: it carries out a `BlobPolicy`'s
/// actions as bookkeeping and lets a test script how each request ends, on
/// a clock the test moves by hand. No sockets, no files, no threads.
struct ScriptedTransport {
    static let registry = "https://registry.test/v2/library/m/blobs/sha256:" + String(repeating: "ab", count: 32)
    static let cdn = "https://cdn.test/blob?sig=1"
    static let digest = try! Digest(parsing: "sha256:" + String(repeating: "ab", count: 32))

    var policy: BlobPolicy
    var now = 0.0
    /// Requests started and not ended or cancelled, in start order.
    private(set) var running: [PieceRequest] = []
    /// Every request ever started.
    private(set) var started: [PieceRequest] = []
    private(set) var cancelled: [UInt64] = []
    private(set) var failure: HaulError?

    init(
        size: Int64, written: RangeSet = RangeSet(), connections: Int = 4, url: String = Self.registry,
        mirror: Bool = false, configure: (inout EngineConfiguration) -> Void = { _ in }
    ) {
        var config = EngineConfiguration()
        config.connections = connections
        config.maxPieceSize = 8 << 20
        config.minNewPieceSize = 1 << 20
        configure(&config)
        policy = BlobPolicy(
            digest: Self.digest, size: size, url: url, path: "/models/blob",
            written: written, config: config, mirror: mirror, jitter: { 1.0 })
    }

    /// Answers the first contact with a new https origin at once (its
    /// response accepted, as the loop sees at its first body byte); off, a
    /// test watches the other ranges wait for it.
    var answersFirstContact = true

    /// Starts requests while the policy has ready work, up to `limit` running.
    @discardableResult
    mutating func fill(limit: Int = 4) -> [PieceRequest] {
        var new: [PieceRequest] = []
        while running.count < limit {
            if let action = policy.next(now: now) {
                if case .start(let r) = action { new.append(r) }
                apply([action])
                continue
            }
            // A first contact goes without the registry's credentials.
            guard answersFirstContact, let id = policy.resolvingTransfer,
                let r = running.first(where: { $0.transfer == id && !$0.sendCredentials })
            else { break }
            policy.accepted(id, url: r.url, status: 206)
        }
        return new
    }

    mutating func apply(_ actions: [BlobPolicy.Action]) {
        for action in actions {
            switch action {
            case .start(let r):
                running.append(r)
                started.append(r)
            case .cancel(let id):
                running.removeAll { $0.transfer == id }
                cancelled.append(id)
            case .fail(let error):
                failure = error
            }
        }
    }

    /// The request's response was accepted and `bytes` of it written.
    mutating func receive(_ r: PieceRequest, bytes: Int64, status: Int = 206, url: String? = nil) {
        policy.accepted(r.transfer, url: url ?? r.url, status: status)
        policy.wrote(r.transfer, upTo: r.range.lowerBound + bytes)
    }

    /// The request ends as `outcome` says.
    mutating func end(_ r: PieceRequest, _ outcome: PieceOutcome) {
        running.removeAll { $0.transfer == r.transfer }
        apply(policy.ended(r.transfer, outcome, now: now))
    }

    /// The request delivers its whole range.
    mutating func complete(_ r: PieceRequest, status: Int = 206) {
        receive(r, bytes: Int64(r.range.count), status: status)
        end(r, .done(r, status: status))
    }

    /// Completes every running request, starting new ones, until the policy
    /// has nothing left to hand out.
    mutating func drain(limit: Int = 4) {
        fill(limit: limit)
        while let r = running.first, failure == nil {
            complete(r)
            fill(limit: limit)
        }
    }
}

extension PieceOutcome {
    static func done(_ r: PieceRequest, status: Int = 206) -> PieceOutcome {
        PieceOutcome(
            url: r.url, start: r.range.lowerBound, offset: r.range.upperBound, stopAt: r.range.upperBound,
            status: status)
    }

    /// The server refused the request with `status` (the sink saw it).
    static func refused(_ r: PieceRequest, status: Int, retryAfter: String? = nil, challenge: String? = nil)
        -> PieceOutcome
    {
        PieceOutcome(
            url: r.url, start: r.range.lowerBound, offset: r.range.lowerBound, stopAt: r.range.upperBound,
            status: status, verdict: .badStatus, why: "server answered \(status)",
            retryAfter: retryAfter, challenge: challenge)
    }

    /// The connection dropped after `received` bytes of a 206.
    static func reset(_ r: PieceRequest, received: Int64) -> PieceOutcome {
        PieceOutcome(
            url: r.url, start: r.range.lowerBound, offset: r.range.lowerBound + received,
            stopAt: r.range.upperBound, status: 206, completed: false, why: "Connection reset by peer")
    }

    static func redirect(_ r: PieceRequest, to target: String, status: Int = 307) -> PieceOutcome {
        PieceOutcome(
            url: r.url, start: r.range.lowerBound, offset: r.range.lowerBound, stopAt: r.range.upperBound,
            status: status, verdict: .badStatus, redirectURL: target)
    }
}
