import Testing

@testable import HaulKit

/// Ollama's upload in parts: sizes, the order of PATCHes and PUTs, the
/// closing etag, and what a journal keeps.
@Suite struct PartPlanTests {
    static let md5a = Hex.decode("0cc175b9c0f1b6a831c399e269772661")!  // MD5("a")
    static let md5b = Hex.decode("92eb5ffee6ae2fec3ad71c777531578f")!  // MD5("b")

    @Test func partsAreASixteenthWithinOllamasBounds() {
        #expect(PartPlan.partSize(for: 50_000_000) == 100_000_000)
        #expect(PartPlan.partSize(for: 2_000_000_000) == 125_000_000)
        #expect(PartPlan.partSize(for: 40_000_000_000) == 1_000_000_000)
        let plan = PartPlan(size: 250_000_000, session: "s0")
        #expect(plan.ranges == [0..<100_000_000, 100_000_000..<200_000_000, 200_000_000..<250_000_000])
        #expect(PartPlan(size: 2_000_000_000, session: "s0").ranges.count == 16)
    }

    @Test func patchesGoOneAtATimeAndRedirectedPartsGoSideBySide() {
        var plan = PartPlan(size: 300_000_000, session: "s0", limit: 2)
        #expect(plan.start() == [.patch(part: 0, url: "s0")])
        #expect(plan.start() == [], "the next PATCH needs the session the first one returns")
        plan.redirected(0, to: "p0", next: "s1")
        #expect(plan.start() == [.put(part: 0, url: "p0"), .patch(part: 1, url: "s1")])
        plan.redirected(1, to: "p1", next: "s2")
        #expect(plan.start() == [.put(part: 1, url: "p1")], "the PATCH of part 2 waits: two requests out is the limit")
        plan.sent(0, md5: Self.md5a)
        #expect(plan.held == 100_000_000)
        #expect(plan.start() == [.patch(part: 2, url: "s2")])
        plan.redirected(2, to: "p2", next: "s3")
        #expect(plan.start() == [.put(part: 2, url: "p2")])
        #expect(plan.start() == [], "all parts out or done: nothing to close yet")
        plan.sent(1, md5: Self.md5b)
        plan.sent(2, md5: Self.md5a)
        guard case .finish(let url, let etag) = plan.start().first else {
            Issue.record("no finish")
            return
        }
        #expect(url == "s3")
        #expect(etag.hasSuffix("-3"))
        #expect(plan.held == 300_000_000)
    }

    @Test func theEtagIsTheMD5OfThePartsMD5s() {
        var plan = PartPlan(size: 150_000_000, session: "s0")
        _ = plan.start()
        plan.redirected(0, to: "p0", next: "s1")
        _ = plan.start()
        plan.sent(0, md5: Self.md5a)
        plan.redirected(1, to: "p1", next: "s2")
        _ = plan.start()
        plan.sent(1, md5: Self.md5b)
        // hashlib.md5(md5(b"a").digest() + md5(b"b").digest()).hexdigest()
        #expect(plan.start() == [.finish(url: "s2", etag: "96e024ba2074fe77e8e965ba43a704be-2")])
    }

    @Test func anEmptyBlobClosesAtOnceWithNoParts() {
        var plan = PartPlan(size: 0, session: "s0")
        #expect(plan.start() == [.finish(url: "s0", etag: "d41d8cd98f00b204e9800998ecf8427e-0")])
    }

    @Test func aRegistryThatTakesTheBytesItselfGetsThemInOrder() {
        var plan = PartPlan(size: 150_000_000, session: "s0")
        #expect(plan.start() == [.patch(part: 0, url: "s0")])
        plan.accepted(0, next: "s1", md5: Self.md5a)
        #expect(plan.start() == [.patch(part: 1, url: "s1")])
        plan.accepted(1, next: "s2", md5: Self.md5b)
        #expect(plan.start() == [.finish(url: "s2", etag: "96e024ba2074fe77e8e965ba43a704be-2")])
    }

    @Test func aFailedRequestIsTriedAgainWhereItWent() {
        var plan = PartPlan(size: 150_000_000, session: "s0")
        _ = plan.start()
        plan.failed(0)
        #expect(plan.start() == [.patch(part: 0, url: "s0")], "the session did not move on")
        plan.redirected(0, to: "p0", next: "s1")
        #expect(plan.start() == [.put(part: 0, url: "p0"), .patch(part: 1, url: "s1")])
        plan.failed(0)
        #expect(plan.start() == [.put(part: 0, url: "p0")])
    }

    @Test func aJournalKeepsDonePartsAndTheirURLs() throws {
        var plan = PartPlan(size: 350_000_000, session: "s0")
        _ = plan.start()
        plan.redirected(0, to: "p0", next: "s1")
        _ = plan.start()  // PUT p0 (in flight), PATCH part 1
        plan.redirected(1, to: "p1", next: "s2")
        _ = plan.start()  // PUT p1, PATCH part 2 (in flight)
        plan.sent(1, md5: Self.md5b)
        let saved = plan.saved
        #expect(saved.next == "s2")
        #expect(saved.urls == ["p0", nil, nil, nil])
        #expect(saved.md5s == [nil, Hex.encode(Self.md5b), nil, nil])

        var restored = try #require(PartPlan(size: 350_000_000, saved: saved))
        #expect(restored.held == 100_000_000)
        // The part in flight is sent again to its URL; the PATCH that was
        // in flight is asked again of the last session.
        #expect(restored.start() == [.put(part: 0, url: "p0"), .patch(part: 2, url: "s2")])
        #expect(PartPlan(size: 100, saved: saved) == nil, "a record of another size is not used")
        var bad = saved
        bad.md5s[1] = "zz"
        #expect(PartPlan(size: 350_000_000, saved: bad) == nil)
    }

    @Test func partsGoOnlyToHTTPSBehindHTTPS() {
        let https = "https://registry.example"
        let http = "http://127.0.0.1:5000"
        #expect(PartPlan.partURL("https://bucket.example/p?sig=1", registry: https) == "https://bucket.example/p?sig=1")
        #expect(PartPlan.partURL("http://bucket.example/p", registry: https) == nil)
        #expect(PartPlan.partURL("HTTP://bucket.example/p", registry: https) == nil)
        #expect(PartPlan.partURL("ftp://bucket.example/p", registry: https) == nil)
        #expect(PartPlan.partURL("/parts/1", registry: https) == "https://registry.example/parts/1")
        #expect(PartPlan.partURL("http://127.0.0.1:6000/p", registry: http) == "http://127.0.0.1:6000/p")
        #expect(PartPlan.partURL(nil, registry: http) == nil)
        #expect(PartPlan.partURL("//evil.example/p", registry: https) == nil)
    }
}
