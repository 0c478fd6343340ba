import Testing

@testable import HaulKit

@Suite struct SourceResolverTests {
    let blob = "https://registry.test/v2/library/m/blobs/sha256:00"

    @Test func credentialsGoToTheRegistryOriginOnly() {
        let r = SourceResolver(blobURL: blob)
        #expect(r.sendsCredentials(to: "https://registry.test/elsewhere"))
        #expect(!r.sendsCredentials(to: "https://registry.test:444/v2/"))
        #expect(!r.sendsCredentials(to: "http://registry.test/v2/"))
        #expect(!r.sendsCredentials(to: "https://cdn.test/x"))
        #expect(r.isDirect("https://cdn.test/x") && !r.isDirect(blob))
    }

    @Test func anExpiryOfAnOldURLDoesNotResolveAgain() {
        var r = SourceResolver(blobURL: blob)
        r.startedResolving()
        #expect(r.target == nil)
        let first = r.redirect(from: blob, status: 307, to: "https://cdn.test/1")
        #expect(first == nil)
        #expect(r.target == .init(url: "https://cdn.test/1", resolving: false, settles: true, singleStream: false))
        let expired = r.expired(url: "https://cdn.test/1")
        #expect(expired)
        #expect(r.target == .init(url: blob, resolving: true, settles: true, singleStream: false))
        let second = r.redirect(from: blob, status: 307, to: "https://cdn.test/2")
        #expect(second == nil)
        let stale = r.expired(url: "https://cdn.test/1")
        #expect(stale, "a range still on the old URL only retries")
        #expect(r.target?.url == "https://cdn.test/2")
    }

    /// The first range to a new https origin goes alone, so the others
    /// resume its TLS session; a failed first contact opens the same origin
    /// again rather than asking the registry. Plain http has no session to
    /// share: every range goes at once.
    @Test func aNewHTTPSOriginIsOpenedByOneRangeFirst() {
        var r = SourceResolver(blobURL: blob)
        r.startedResolving()
        _ = r.redirect(from: blob, status: 307, to: "https://cdn.test/1")
        #expect(r.target?.settles == true && r.target?.resolving == false)
        r.startedResolving()
        #expect(r.target == nil, "the others wait for the first contact")
        r.resolvingFailed()
        #expect(r.target == .init(url: "https://cdn.test/1", resolving: false, settles: true, singleStream: false))
        r.startedResolving()
        r.settle(url: "https://cdn.test/1", status: 206)
        #expect(r.target == .init(url: "https://cdn.test/1", resolving: false, settles: false, singleStream: false))
        #expect(r.isSplittable)

        let plainBlob = "http://registry.test/v2/library/m/blobs/sha256:00"
        var plain = SourceResolver(blobURL: plainBlob)
        plain.startedResolving()
        _ = plain.redirect(from: plainBlob, status: 307, to: "http://cdn.test/1")
        #expect(plain.target == .init(url: "http://cdn.test/1", resolving: false, settles: false, singleStream: false))
    }

    @Test func aRedirectWithoutLocationOrToAnotherSchemeIsRefused() {
        var r = SourceResolver(blobURL: blob)
        let noLocation = r.redirect(from: blob, status: 302, to: nil)
        #expect(noLocation == .network(url: blob, message: "302 redirect without a Location"))
        let ftp = r.redirect(from: blob, status: 302, to: "ftp://x/y")
        #expect(ftp != nil)
    }
}
