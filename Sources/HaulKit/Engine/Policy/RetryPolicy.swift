import Foundation

/// What to do after a range request failed, kept free of I/O so it can be
/// tested on its own.
enum RetryPolicy {
    enum Decision: Equatable {
        /// Transient (no answer, 408, 429, 5xx): try again after a backoff.
        case retry
        /// A signed CDN URL stopped working (it expired or was revoked): ask
        /// the registry for a fresh one.
        case reresolve
        /// The registry does not have the blob.
        case notFound
        /// Retrying cannot help (other 4xx, auth refused by the registry).
        case fatal
    }

    /// The longest `Retry-After` Haul waits; a server asking for more gets a
    /// clear error instead of a silent hour-long pause.
    static let maxRetryAfter = 300.0

    /// `status` is 0 when no response arrived (reset, timeout, refused).
    static func decide(status: Int, onCDN: Bool) -> Decision {
        if onCDN && [400, 401, 403, 404, 410].contains(status) { return .reresolve }
        switch status {
        case 0, 408, 429, 500...599:
            return .retry
        case 404:
            return .notFound
        case 400..<500:
            return .fatal
        default:
            // 1xx/2xx/3xx that ended without the body: a truncated answer.
            return .retry
        }
    }

    /// Exponential backoff with jitter: 0.25 s doubling per attempt, capped
    /// at 10 s, scaled by a random factor in 0.5...1.5 so that connections
    /// failing together do not come back together.
    static func backoff(attempt: Int, random: Double = Double.random(in: 0.5...1.5)) -> Double {
        min(10.0, 0.25 * Double(1 << min(max(attempt, 0), 6))) * random
    }

    /// Seconds to wait per a `Retry-After` value: delta-seconds or an
    /// HTTP-date (RFC 9110 §10.2.3). Nil when absent or unparseable.
    static func retryAfter(_ value: String?, now: Date = Date()) -> Double? {
        guard let value = value?.trimmingCharacters(in: .whitespaces), !value.isEmpty else { return nil }
        if value.allSatisfy(\.isASCIIDigit) {
            // More than a billion seconds reads as "too long" (the caller
            // refuses waits beyond `maxRetryAfter`), never as a number
            // that overflows a deadline.
            return WireNumber.parse(value, in: 0...999_999_999).map(Double.init) ?? .greatestFiniteMagnitude
        }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        guard let date = formatter.date(from: value) else { return nil }
        return max(0, date.timeIntervalSince(now))
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}
