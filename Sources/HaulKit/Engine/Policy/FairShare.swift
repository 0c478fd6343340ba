/// Who gets a free connection when several blobs want one: the blob
/// running the fewest ranges, the earliest submitted on a tie. Blobs of
/// different pulls (the daemon's clients, `haul pull a b c`) then share the
/// connection budget evenly; handing each freed connection to the earliest
/// blob instead let the first pulls finish while the last ones waited.
enum FairShare {
    /// Indices into `running` (ranges each blob runs, in submission order),
    /// in the order they are offered a connection.
    static func order(running: [Int]) -> [Int] {
        running.indices.sorted { (running[$0], $0) < (running[$1], $1) }
    }
}
