import Testing

@testable import HaulKit

/// The order of an upload's requests, and what a registry's `Range` says.
@Suite struct UploadPlanTests {
    @Test func chunksGoInOrderAndTheLastRidesOnThePut() {
        let plan = UploadPlan(size: 40, chunk: 16)
        #expect(plan.next(held: 0) == .patch(0..<16))
        #expect(plan.next(held: 16) == .patch(16..<32))
        #expect(plan.next(held: 32) == .finish(32..<40))
        #expect(plan.next(held: 40) == .finish(40..<40), "all held: the PUT carries nothing")
        // A registry that kept less than was sent is believed: resend from there.
        #expect(plan.next(held: 10) == .patch(10..<26))
    }

    @Test func aSmallBlobIsOnePutAndTheRegistryMinimumWins() {
        #expect(UploadPlan(size: 5, chunk: 16).next(held: 0) == .finish(0..<5))
        #expect(UploadPlan(size: 0, chunk: 16).next(held: 0) == .finish(0..<0))
        let plan = UploadPlan(size: 100, chunk: 16, registryMinimum: 64)
        #expect(plan.next(held: 0) == .patch(0..<64))
        #expect(plan.next(held: 64) == .finish(64..<100))
    }

    @Test(arguments: [("0-99", Int64(100)), ("bytes=0-15", 16), ("0-0", 0), (" 0-1 ", 2)])
    func aRangeHeaderIsWhatTheRegistryHolds(header: String, held: Int64) throws {
        #expect(try UploadPlan.held(fromRange: header, from: "r.test") == held)
    }

    @Test(arguments: [nil, "", "5-99", "-5", "0-9-9", "0--1"])
    func anythingElseIsNotAnAnswer(header: String?) throws {
        #expect(try UploadPlan.held(fromRange: header, from: "r.test") == nil)
    }

    /// A session's progress whose last byte is no byte of a blob Haul could
    /// hold is an error naming the registry, never `last + 1` on
    /// `Int64.max` (which trapped and took the daemon down).
    @Test(arguments: [
        "0-9223372036854775807", "bytes=0-9223372036854775806", "0-99999999999999999999999", "0-1099511627776",
        "0-", "0-x", "0-+5", "0-1e9"
    ])
    func aProgressBeyondAnyBlobIsAnErrorNamingTheRegistry(header: String) {
        #expect(throws: WireNumber.Invalid.self) { try UploadPlan.held(fromRange: header, from: "r.test") }
        do {
            _ = try UploadPlan.held(fromRange: header, from: "https://r.test")
        } catch {
            #expect(error.description.contains("https://r.test sent Range"))
        }
    }

    /// Bytes sent bound every upload loop: twice the blob and one chunk.
    @Test func theResendBudgetEndsAtTwiceTheBlobAndOneChunk() {
        var budget = ResendBudget(size: 100)
        #expect(ResendBudget.limit(size: 100, chunk: 16) == 216)
        var spent = 0
        while budget.spend(16, chunk: 16) { spent += 1 }
        #expect(spent == 13 && budget.sent == 208)
        #expect(budget.spend(8, chunk: 16) && !budget.spend(1, chunk: 16))
        #expect(ResendBudget.limit(size: .max, chunk: .max) == .max)
        var huge = ResendBudget(size: 1)
        #expect(!huge.spend(.max, chunk: 1) && huge.sent == 0)
    }

    /// A session's `Location` stays on the registry: credentials go with
    /// every request to it, so another host, port or scheme is refused.
    @Test func aSessionStaysOnTheRegistry() {
        let origin = "https://registry.test:5000"
        #expect(
            RegistryClient.sessionURL("/v2/a/b/blobs/uploads/u?_state=x", origin: origin)
                == "https://registry.test:5000/v2/a/b/blobs/uploads/u?_state=x")
        #expect(
            RegistryClient.sessionURL("https://registry.test:5000/v2/u", origin: origin)
                == "https://registry.test:5000/v2/u")
        for elsewhere in [
            "https://169.254.169.254/latest/meta-data", "http://registry.test:5000/v2/u", "https://registry.test/v2/u",
            "//evil.test/v2/u", "file:///etc/passwd", "", nil
        ] as [String?] {
            #expect(RegistryClient.sessionURL(elsewhere, origin: origin) == nil, "\(elsewhere ?? "nil")")
        }
    }

    @Test func aTagListsNextPageIsItsLinkHeader() {
        #expect(
            RegistryClient.nextPage(#"</v2/a/b/tags/list?n=1000&last=v9>; rel="next""#)
                == "/v2/a/b/tags/list?n=1000&last=v9")
        #expect(RegistryClient.nextPage(#"</v2/x>; rel="prev""#) == nil)
        #expect(RegistryClient.nextPage(nil) == nil)
        #expect(RegistryClient.nextPage(#"rel="next""#) == nil)
    }
}
