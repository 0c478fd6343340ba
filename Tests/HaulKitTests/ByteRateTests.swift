import Testing

@testable import HaulKit

@Suite struct ByteRateTests {
    @Test(
        arguments: [
            ("500K", 500 * 1024), ("20M", 20 << 20), ("1G", 1 << 30), ("1.5m", 1_572_864), ("4096", 4096),
            (" 2k ", 2048)
        ] as [(String, Int64)])
    func ratesReadAsCurlWritesThem(text: String, bytes: Int64) throws {
        #expect(try ByteRate.parse(text) == bytes)
    }

    @Test func zeroMeansNoLimitAsInCurl() throws {
        #expect(try ByteRate.parse("0") == nil)
        #expect(try ByteRate.parse("0M") == nil)
    }

    @Test(arguments: ["", "fast", "5X", "-1M", "1e9", "M", "1.2.3K", "99999999999G", "nan"])
    func nonsenseIsRefusedInWords(text: String) {
        #expect(throws: HaulError.invalidRate(text)) { try ByteRate.parse(text) }
        #expect(HaulError.invalidRate(text).description.contains("optional K, M or G suffix"))
    }

    @Test func theBucketRefillsAtTheRateAndCapsItsBurst() {
        let limiter = RateLimiter(bytesPerSecond: 1000, now: 0)
        limiter.refill(now: 0.1)
        #expect(limiter.bucket.pointee.tokens == 100)
        limiter.refill(now: 10)
        #expect(limiter.bucket.pointee.tokens == 250, "a quarter second's worth at most")
        limiter.bucket.pointee.tokens = -500
        #expect(limiter.wait == 0.5)
        var config = EngineConfiguration()
        config.maxBytesPerSecond = 1 << 20
        config.connections = 16
        #expect(RateLimiter.make(for: &config, now: 0) != nil)
        #expect(config.receiveBufferSize == 32 << 10, "one chunk per connection: 1/32 of a second's worth")
        // A low limit feeds few connections: each still gets a chunk about
        // twice a second, so none looks stalled.
        var slow = EngineConfiguration()
        slow.maxBytesPerSecond = 40 << 10
        _ = RateLimiter.make(for: &slow, now: 0)
        #expect(slow.connections == 1 && slow.receiveBufferSize == 20 << 10)
        var unlimited = EngineConfiguration()
        #expect(RateLimiter.make(for: &unlimited, now: 0) == nil && unlimited.receiveBufferSize == 256 << 10)
    }
}
