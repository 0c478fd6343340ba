import Testing

@testable import HaulKit

/// Whole-model progress folded from a pull's events, on a clock the test
/// moves: bytes, rate, ETA and per-blob states.
struct PullProgressTests {
    let big = Layer(mediaType: "application/vnd.ollama.image.model", digest: Digest(hashing: [1]), size: 1000)
    let cached = Layer(mediaType: "application/vnd.ollama.image.license", digest: Digest(hashing: [2]), size: 100)
    let config = Layer(
        mediaType: "application/vnd.docker.container.image.v1+json", digest: Digest(hashing: [3]), size: 50)

    func planned() throws -> PullProgress {
        var progress = PullProgress()
        progress.apply(.pullingManifest, now: 0)
        progress.apply(
            .plan(
                PullPlan(
                    name: try ModelName(parsing: "llama3.2"), manifestDigest: Digest(hashing: [9]),
                    blobs: [big, cached, config], cached: [cached.digest])), now: 0)
        return progress
    }

    @Test func storedBlobsCountAsCompletedAndTheRestAddUp() throws {
        var progress = try planned()
        #expect(progress.phase == .downloading)
        #expect(progress.totalBytes == 1150 && progress.completedBytes == 100)
        #expect(progress.blob(cached.digest)?.state == .stored && progress.blob(big.digest)?.state == .waiting)
        #expect(progress.bytesPerSecond == nil && progress.eta == nil)

        progress.apply(.progress(BlobProgress(digest: big.digest, total: 1000, completed: 400, hashed: 200)), now: 2)
        #expect(progress.completedBytes == 500)
        #expect(progress.blob(big.digest)?.state == .downloading)
        #expect(progress.bytesPerSecond == 200)  // 400 bytes in 2 s
        #expect(progress.eta == 3.25)  // 650 left at 200/s
        #expect(abs(progress.fraction - 500.0 / 1150) < 1e-9)

        progress.apply(.progress(BlobProgress(digest: big.digest, total: 1000, completed: 1000, hashed: 1000)), now: 4)
        progress.apply(.progress(BlobProgress(digest: config.digest, total: 50, completed: 50, hashed: 50)), now: 4.2)
        #expect(progress.blob(big.digest)?.state == .complete && progress.blob(config.digest)?.state == .complete)
        #expect(progress.completedBytes == 1150 && progress.fraction == 1)
        for event in [PullEvent.verifying, .writingManifest, .success] { progress.apply(event, now: 5) }
        #expect(progress.phase == .done && progress.eta == nil)
    }

    @Test func resumedBytesAreCompletedButNotPartOfTheRate() throws {
        var progress = try planned()
        progress.apply(.resuming(BlobProgress(digest: big.digest, total: 1000, completed: 600, hashed: 600)), now: 1)
        #expect(progress.completedBytes == 700)
        progress.apply(.progress(BlobProgress(digest: big.digest, total: 1000, completed: 700, hashed: 650)), now: 2)
        // 100 new bytes in the 2 s since the plan, not 700.
        #expect(progress.bytesPerSecond == 50)
        #expect(progress.blob(big.digest)?.bytesPerSecond == 100)  // 100 bytes in the 1 s since it resumed
    }

    /// What one run did, apart from what earlier runs left: the pull log's
    /// bytes and hashes, and what an interrupted pull keeps.
    @Test func thisRunsBytesAndHashesAreTakenApartFromEarlierRuns() throws {
        var progress = try planned()
        progress.apply(.resuming(BlobProgress(digest: big.digest, total: 1000, completed: 600, hashed: 512)), now: 1)
        #expect(progress.downloadedBytes == 0 && progress.hashedBytes == 0)
        #expect(progress.resumedHashedBytes == 512, "the stored blob's hash is not a resume")
        #expect(progress.partialBytes == 600, "the stored blob is not a partial")
        progress.apply(.progress(BlobProgress(digest: big.digest, total: 1000, completed: 1000, hashed: 1000)), now: 2)
        progress.apply(.progress(BlobProgress(digest: config.digest, total: 50, completed: 50, hashed: 50)), now: 2)
        #expect(progress.downloadedBytes == 400 + 50)
        #expect(progress.hashedBytes == 488 + 50)
        #expect(progress.partialBytes == 1050)
    }

    @Test func progressNeverGoesBackwardsNorPastTheBlob() throws {
        var progress = try planned()
        progress.apply(.progress(BlobProgress(digest: big.digest, total: 1000, completed: 800, hashed: 800)), now: 1)
        progress.apply(.progress(BlobProgress(digest: big.digest, total: 1000, completed: 300, hashed: 300)), now: 2)
        progress.apply(.progress(BlobProgress(digest: big.digest, total: 1000, completed: 5000, hashed: 5000)), now: 3)
        // A digest that is not in the plan is ignored.
        progress.apply(
            .progress(BlobProgress(digest: Digest(hashing: [7]), total: 10, completed: 10, hashed: 10)), now: 3)
        #expect(progress.blob(big.digest)?.completed == 1000 && progress.totalBytes == 1150)
    }
}
