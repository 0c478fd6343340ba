/// Where one blob's bytes come from, as a state machine over plain values.
///
/// The first range asks the registry (`{registry}/v2/…/blobs/{digest}`);
/// the registry serves it itself or redirects, as Ollama's
/// `server/download.go` (`blobDownload.Prepare`, `getDirectURL`) expects: a
/// redirect to another origin is the direct (CDN) URL every range then
/// uses; one to the registry's own origin is followed and resolved there.
/// A direct URL that starts refusing (an expired signature) sends the next
/// range back to the registry for a fresh one. A server that ignores Range
/// turns the blob into one stream. The first range to a new https origin
/// goes alone: once it is answered, its TLS session is in curl's shared
/// cache and every other range connection resumes it instead of making a
/// full handshake of its own.
struct SourceResolver: Equatable {
    enum Source: Equatable {
        /// The next range asks the registry (or where it redirected within
        /// its own origin).
        case unresolved
        /// That request (or the first contact with a new https origin) is in
        /// flight: other ranges wait for its answer.
        case resolving
        /// Ranges go to this https URL, once its first range was answered.
        case opening(String)
        /// Ranges go to this URL.
        case resolved(String)
        /// The server ignores Range: one stream of the whole blob.
        case singleStream(String)
    }

    /// What the next range request goes to.
    struct Target: Equatable {
        let url: String
        /// The request also discovers the blob's direct URL.
        let resolving: Bool
        /// The other ranges wait for this request's answer.
        let settles: Bool
        let singleStream: Bool
    }

    /// The registry's blob URL.
    let blobURL: String
    private(set) var source: Source = .unresolved
    /// The registry URL being resolved (moves on same-origin redirects).
    private var registryURL: String
    /// The origin a first contact is opening, to go back to if it fails.
    private var opening: String?
    private var redirects = 0
    /// Fresh direct URLs fetched in a row without one delivering.
    private var reresolves = 0

    static let maxRedirects = 10
    static let maxReresolves = 5

    init(blobURL: String) {
        self.blobURL = blobURL
        self.registryURL = blobURL
    }

    /// Nil while the resolving request is in flight.
    var target: Target? {
        switch source {
        case .unresolved: return Target(url: registryURL, resolving: true, settles: true, singleStream: false)
        case .resolving: return nil
        case .opening(let url): return Target(url: url, resolving: false, settles: true, singleStream: false)
        case .resolved(let url): return Target(url: url, resolving: false, settles: false, singleStream: false)
        case .singleStream(let url): return Target(url: url, resolving: false, settles: false, singleStream: true)
        }
    }

    var isSingleStream: Bool {
        if case .singleStream = source { return true }
        return false
    }

    /// Ranges can be split between connections only on a settled source
    /// that honours Range.
    var isSplittable: Bool {
        if case .resolved = source { return true }
        return false
    }

    /// The registry's credentials go to its own origin (also after it
    /// redirected to another path of itself), never elsewhere.
    func sendsCredentials(to url: String) -> Bool { Self.sameOrigin(url, blobURL) }

    func isDirect(_ url: String) -> Bool { !Self.sameOrigin(url, blobURL) }

    mutating func startedResolving() {
        if case .opening(let url) = source { opening = url } else { opening = nil }
        source = .resolving
    }

    /// The resolving request ended without settling anything: ask the
    /// registry again, or open the new origin again.
    mutating func resolvingFailed() {
        guard source == .resolving else { return }
        source = opening.map { .opening($0) } ?? .unresolved
    }

    /// A response from `url` was accepted: 206 means ranges work there, 200
    /// means the server ignores Range.
    mutating func settle(url: String, status: Int) {
        source = status == 200 ? .singleStream(url) : .resolved(url)
    }

    /// A range from `url` ignored Range (a 200 after 206s).
    mutating func ignoredRange(url: String) { source = .singleStream(url) }

    /// A URL delivered bytes: it has not expired.
    mutating func delivered() { reresolves = 0 }

    /// The resolving request was redirected to `target`; the error says why
    /// the redirect is not followed.
    mutating func redirect(from url: String, status: Int, to target: String?) -> HaulError? {
        guard let target else { return .network(url: url, message: "\(status) redirect without a Location") }
        // Plain http only behind a registry that is itself plain http; an
        // https registry is never continued over http, whatever --insecure
        // says (Ollama #18512: `x/transfer/redirect.go`
        // `validateRedirectScheme`; --insecure relaxes address checks only).
        guard let to = URLParts(target), let from = URLParts(url), let base = URLParts(blobURL),
            !(to.scheme == "http" && base.scheme == "https")
        else {
            return .network(url: url, message: Self.refusal(redirectTo: target))
        }
        redirects += 1
        if redirects > Self.maxRedirects {
            return .network(url: blobURL, message: "maximum redirects exceeded (\(Self.maxRedirects)) for directURL")
        }
        if to.sameOrigin(from) {
            registryURL = target
            source = .unresolved
        } else {
            source = to.scheme == "https" ? .opening(target) : .resolved(target)
        }
        return nil
    }

    /// A direct URL refused a range as if it had expired. The first range to
    /// report it for the current URL sends the blob back to the registry;
    /// the others just retry. Returns false when fresh URLs keep failing.
    mutating func expired(url: String) -> Bool {
        let current: String
        switch source {
        case .resolved(let u), .opening(let u): current = u
        case .resolving where opening != nil: current = opening!
        default: return true
        }
        guard current == url else { return true }
        opening = nil
        reresolves += 1
        if reresolves > Self.maxReresolves { return false }
        registryURL = blobURL
        redirects = 0
        source = .unresolved
        return true
    }

    /// The message for a redirect that is not followed.
    static func refusal(redirectTo target: String) -> String {
        let scheme = target.prefix { $0 != ":" }.lowercased()
        return scheme == "http"
            ? "refusing redirect from https to http (\"\(HaulError.quoted(target))\"): an https registry's blobs "
                + "must stay on https (--insecure does not change that)"
            : "refusing redirect to \"\(HaulError.quoted(target))\": only http and https are followed"
    }

    static func sameOrigin(_ a: String, _ b: String) -> Bool {
        guard let x = URLParts(a), let y = URLParts(b) else { return false }
        return x.sameOrigin(y)
    }
}
