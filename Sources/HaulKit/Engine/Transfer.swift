internal import CShims
#if canImport(Glibc)
import Glibc
#endif

/// One HTTP request on one curl easy handle, with the sink its body goes to.
/// Confined to the loop thread. The loop calls `close()` exactly once, after
/// removing the handle from the multi handle; curl never calls back into this
/// object (callbacks only see the C sink), so there is no lifetime hazard at
/// teardown.
final class Transfer {
    enum Purpose {
        case fetch(id: UInt64)
        case piece(blob: UInt64)
    }

    let easy: OpaquePointer
    let sink: UnsafeMutablePointer<hl_sink>
    let purpose: Purpose
    let url: String
    let startedAt: Double
    /// Range pieces: the request that also discovers the blob's direct URL.
    var resolving = false
    /// Failed attempts of this range before this one.
    var attempts = 0
    /// Bytes below this offset have been recorded as written.
    var synced: Int64
    var rate: Double?
    var lastSplitAt = 0.0
    /// When the last byte arrived (or the transfer started).
    private(set) var lastByteAt: Double
    private var sampleTime: Double
    private var sampleOffset: Int64
    private var headerList: UnsafeMutablePointer<curl_slist>?
    private var closed = false

    private init(easy: OpaquePointer, sink: UnsafeMutablePointer<hl_sink>, purpose: Purpose, url: String, now: Double) {
        self.easy = easy
        self.sink = sink
        self.purpose = purpose
        self.url = url
        self.startedAt = now
        self.synced = sink.pointee.offset
        self.sampleTime = now
        self.sampleOffset = sink.pointee.offset
        self.lastByteAt = now
    }

    /// A ranged GET of `[range)` written into `fd` at its offsets.
    static func piece(blob: UInt64, url: String, range: Range<Int64>, total: Int64, acceptFull: Bool,
                      fd: Int32, hasher: Hasher, headers: [String], followRedirects: Bool, insecure: Bool,
                      share: OpaquePointer, config: EngineConfiguration, now: Double) -> Transfer? {
        guard let easy = curl_easy_init() else { return nil }
        guard let sink = hl_sink_new_file(easy, fd, range.lowerBound, range.upperBound, total,
                                          acceptFull ? 1 : 0, hasher.raw) else {
            curl_easy_cleanup(easy)
            return nil
        }
        let t = Transfer(easy: easy, sink: sink, purpose: .piece(blob: blob), url: url, now: now)
        t.configure(url: url, headers: headers, followRedirects: followRedirects, insecure: insecure,
                    share: share, config: config)
        _ = hl_easy_setopt_str(easy, CURLOPT_RANGE, "\(range.lowerBound)-\(range.upperBound - 1)")
        return t
    }

    /// A GET whose body is kept in memory, up to `request.limit` bytes.
    static func fetch(id: UInt64, request: HTTPRequest, share: OpaquePointer,
                      config: EngineConfiguration, now: Double) -> Transfer? {
        guard let easy = curl_easy_init() else { return nil }
        guard let sink = hl_sink_new_memory(easy, request.limit) else {
            curl_easy_cleanup(easy)
            return nil
        }
        let t = Transfer(easy: easy, sink: sink, purpose: .fetch(id: id), url: request.url, now: now)
        t.configure(url: request.url, headers: request.headers, followRedirects: request.followRedirects,
                    insecure: request.insecure, share: share, config: config)
        return t
    }

    private func configure(url: String, headers: [String], followRedirects: Bool, insecure: Bool,
                           share: OpaquePointer, config: EngineConfiguration) {
        // curl copies string options, so temporaries are fine here; only the
        // header list must outlive the request.
        _ = hl_easy_setopt_str(easy, CURLOPT_URL, url)
        _ = hl_easy_setopt_ptr(easy, CURLOPT_SHARE, UnsafeMutableRawPointer(share))
        // One TCP connection per range: with HTTP/2 curl would multiplex all
        // ranges to a host over one connection and defeat per-connection
        // throttles and the slow-connection logic.
        _ = hl_easy_setopt_long(easy, CURLOPT_HTTP_VERSION, Int(CURL_HTTP_VERSION_1_1))
        _ = hl_easy_setopt_long(easy, CURLOPT_NOSIGNAL, 1)
        _ = hl_easy_setopt_str(easy, CURLOPT_PROTOCOLS_STR, "http,https")
        // Redirects curl follows may not leave http(s), nor downgrade an
        // https request to http unless the user said --insecure.
        let downgradeAllowed = insecure || !url.lowercased().hasPrefix("https:")
        _ = hl_easy_setopt_str(easy, CURLOPT_REDIR_PROTOCOLS_STR, downgradeAllowed ? "http,https" : "https")
        _ = hl_easy_setopt_long(easy, CURLOPT_FOLLOWLOCATION, followRedirects ? 1 : 0)
        _ = hl_easy_setopt_long(easy, CURLOPT_MAXREDIRS, 10)
        _ = hl_easy_setopt_long(easy, CURLOPT_CONNECTTIMEOUT, config.connectTimeout)
        // Stall guard: abort when fewer than 1 byte/s arrives for the timeout.
        _ = hl_easy_setopt_long(easy, CURLOPT_LOW_SPEED_LIMIT, 1)
        _ = hl_easy_setopt_long(easy, CURLOPT_LOW_SPEED_TIME, config.stallTimeout)
        _ = hl_easy_setopt_long(easy, CURLOPT_TCP_KEEPALIVE, 1)
        _ = hl_easy_setopt_long(easy, CURLOPT_BUFFERSIZE, config.receiveBufferSize)
        _ = hl_easy_setopt_str(easy, CURLOPT_USERAGENT, config.userAgent)
        if let ca = config.caFile { _ = hl_easy_setopt_str(easy, CURLOPT_CAINFO, ca) }
        if let dir = config.caDirectory { _ = hl_easy_setopt_str(easy, CURLOPT_CAPATH, dir) }
        if config.skipTLSVerification {
            _ = hl_easy_setopt_long(easy, CURLOPT_SSL_VERIFYPEER, 0)
            _ = hl_easy_setopt_long(easy, CURLOPT_SSL_VERIFYHOST, 0)
        }
        // The proxy is chosen here, by Go's rules; an empty string stops
        // curl from applying its own (different) reading of the environment.
        _ = hl_easy_setopt_str(easy, CURLOPT_PROXY, config.proxies.proxy(for: url) ?? "")
        if let noProxy = config.proxies.noProxy { _ = hl_easy_setopt_str(easy, CURLOPT_NOPROXY, noProxy) }
        for h in headers { headerList = curl_slist_append(headerList, h) }
        if let headerList { _ = hl_easy_setopt_ptr(easy, CURLOPT_HTTPHEADER, UnsafeMutableRawPointer(headerList)) }
    }

    /// The message for a redirect curl refused to follow.
    static func refusedRedirect(to target: String) -> String {
        let scheme = target.prefix { $0 != ":" }.lowercased()
        return scheme == "http" ? "refusing redirect from https to http (\"\(HaulError.quoted(target))\"): use --insecure to allow it"
            : "refusing redirect to \"\(HaulError.quoted(target))\": only http and https are followed"
    }

    /// Releases curl and C memory. The handle must already be out of the
    /// multi handle.
    func close() {
        guard !closed else { return }
        closed = true
        curl_easy_cleanup(easy)
        curl_slist_free_all(headerList)
        hl_sink_free(sink)
    }

    deinit { assert(closed, "Transfer must be closed by the loop before it is released") }

    var status: Int {
        var code = 0
        _ = hl_easy_getinfo_long(easy, CURLINFO_RESPONSE_CODE, &code)
        return code
    }

    var redirectURL: String? {
        var p: UnsafePointer<CChar>?
        guard hl_easy_getinfo_str(easy, CURLINFO_REDIRECT_URL, &p) == CURLE_OK, let p else { return nil }
        return String(cString: p)
    }

    var effectiveURL: String {
        var p: UnsafePointer<CChar>?
        guard hl_easy_getinfo_str(easy, CURLINFO_EFFECTIVE_URL, &p) == CURLE_OK, let p else { return url }
        return String(cString: p)
    }

    func header(_ name: String) -> String? {
        guard let v = hl_easy_header(easy, name) else { return nil }
        return String(cString: v)
    }

    /// curl's explanation of a failed transfer.
    func errorText(_ code: CURLcode) -> String {
        let buffer = withUnsafeBytes(of: &sink.pointee.error) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
        return buffer.isEmpty ? String(cString: curl_easy_strerror(code)) : buffer
    }

    /// Folds the bytes received since the last sample into an exponentially
    /// weighted rate, at most every quarter second.
    func sampleRate(now: Double) {
        let dt = now - sampleTime
        guard dt >= 0.25 else { return }
        let offset = sink.pointee.offset
        if offset > sampleOffset { lastByteAt = now }
        let instant = Double(offset - sampleOffset) / dt
        rate = rate.map { 0.5 * $0 + 0.5 * instant } ?? instant
        sampleTime = now
        sampleOffset = offset
    }
}
