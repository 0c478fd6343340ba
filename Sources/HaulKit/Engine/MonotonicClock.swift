#if canImport(Glibc)
import Glibc
#endif

/// Seconds on CLOCK_MONOTONIC, as a Double: the loop does rate arithmetic
/// with it and never needs wall time.
enum MonotonicClock {
    /// `duration` in the clock's unit, for the loop's arithmetic.
    static func seconds(_ duration: Duration) -> Double {
        let (seconds, attoseconds) = duration.components
        return Double(seconds) + Double(attoseconds) / 1e18
    }

    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}
