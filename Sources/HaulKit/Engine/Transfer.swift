internal import CShims

#if canImport(Glibc)
import Glibc
#endif

/// One HTTP request on one curl easy handle, with what its body goes to:
/// a file sink for a range of a blob, a memory body for a fetch. Confined
/// to the loop thread. The loop calls `close()` exactly once, after removing
/// the handle from the multi handle. curl's write callbacks only see the C
/// sink or body, both owned here and freed when the transfer goes, after
/// the handle; so is the hasher a sink writes to, and the one Swift object
/// curl calls, the `ConnectionGuard` (when it opens a socket).
final class Transfer {
    enum Purpose {
        case fetch(id: UInt64)
        case piece(blob: UInt64, transfer: UInt64)
    }

    /// Where the body goes.
    private enum Output: ~Copyable {
        case file(Sink)
        case memory(ResponseBody)
    }

    let easy: OpaquePointer
    private let output: Output
    /// The hash frontier a file sink offers its bytes to: held here so that
    /// it outlives the C sink that points at it.
    private let hasher: Hasher?
    /// curl's error text (CURLOPT_ERRORBUFFER), which curl writes until the
    /// handle is cleaned up.
    private let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE))
    let purpose: Purpose
    let url: String
    /// `scheme://host:port` of `url`: whose connection budget it uses.
    let origin: String
    /// Bytes received already reported to that budget.
    var countedBytes: Int64
    let startedAt: Double
    var rate: Double?
    var lastSplitAt = 0.0
    /// When the last byte arrived (or the transfer started).
    private(set) var lastByteAt: Double
    private var sampleTime: Double
    private var sampleOffset: Int64
    private var headerList: UnsafeMutablePointer<curl_slist>?
    private var closed = false
    var isClosed: Bool { closed }
    /// A direct-I/O sink's stage, returned to its pool at close.
    private var stage: (buffer: UnsafeMutableRawPointer, pool: StagePool)?
    /// When `state.offset` last moved (direct I/O drains slow stages).
    private(set) var lastWriteAt: Double
    private var lastWritten: Int64
    /// Options libcurl refused. Each one carries a guarantee (redirects
    /// limited to http(s), no https->http downgrade, the stall guard, TLS
    /// settings): a libcurl too old for one must not run without it.
    private var refused: [String] = []
    /// Checks the address of every connection the handle opens.
    private(set) var connectionGuard: ConnectionGuard?
    /// The body of an upload read from a file, freed at close.
    private var upload: OpaquePointer?

    fileprivate func check(_ result: CURLcode, _ option: String) {
        if result != CURLE_OK { refused.append("\(option) (\(String(cString: curl_easy_strerror(result))))") }
    }

    /// Closes and fails the transfer if libcurl refused an option.
    private func verified() throws(HaulError) -> Transfer {
        guard refused.isEmpty else {
            close()
            throw .network(
                url: url,
                message: "\(String(cString: curl_version())) "
                    + "refused \(refused.joined(separator: ", ")); Haul needs libcurl 7.85 or later")
        }
        return self
    }

    private init(
        easy: OpaquePointer, output: consuming Output, hasher: Hasher?, purpose: Purpose, url: String,
        now: Double
    ) {
        self.easy = easy
        self.hasher = hasher
        self.purpose = purpose
        self.url = url
        self.origin = OriginBudgets.origin(of: url)
        let start: Int64
        switch output {
        case .file(let sink): start = sink.received
        case .memory: start = 0
        }
        self.output = output
        self.countedBytes = start
        self.startedAt = now
        self.sampleTime = now
        self.sampleOffset = start
        self.lastByteAt = now
        self.lastWriteAt = now
        self.lastWritten = start
        errorBuffer.initialize(to: 0)
        check(
            hl_easy_setopt_ptr(easy, CURLOPT_ERRORBUFFER, UnsafeMutableRawPointer(errorBuffer)), "CURLOPT_ERRORBUFFER")
    }

    /// The file sink's state (all zero for a fetch).
    var state: Sink.State {
        switch output {
        case .file(let sink): return sink.state
        case .memory:
            return Sink.State(
                start: 0, offset: 0, received: 0, end: 0, stopAt: 0, checked: false,
                verdict: .accepted, errno: 0, isPaused: false)
        }
    }

    /// Lowers where a range stops to `cut`, or to just after the bytes its
    /// sink received but has not written yet; returns the new stop.
    @discardableResult
    func lowerStop(to cut: Int64) -> Int64 {
        switch output {
        case .file(let sink): return sink.lowerStop(to: cut)
        case .memory: return 0
        }
    }

    /// Writes the bytes a range's sink holds back for page alignment; the
    /// loop calls it when the range ends, before reading `state.offset`.
    func flush() {
        switch output {
        case .file(let sink): sink.flush()
        case .memory: break
        }
    }

    /// Resumes a range its sink paused for want of tokens.
    func resume() {
        switch output {
        case .file(let sink): sink.resume()
        case .memory: break
        }
    }

    /// Draws a range's bytes from `bucket` (the loop's rate limit).
    func limit(by bucket: UnsafeMutablePointer<hl_bucket>) {
        switch output {
        case .file(let sink): sink.limit(by: bucket)
        case .memory: break
        }
    }

    /// The start of a refused range response's body, for the error message.
    var errorBody: String {
        switch output {
        case .file(let sink): return sink.errorBody
        case .memory: return ""
        }
    }

    /// A fetch's body, and whether it outgrew its limit (which it names).
    var body: (bytes: [UInt8], tooLarge: Bool, limit: Int) {
        switch output {
        case .file: return ([], false, 0)
        case .memory(let body): return (body.bytes, body.tooLarge, body.limit)
        }
    }

    /// A ranged GET of `request.range` of `blob`, written into the blob's
    /// file at its offsets: through the page cache, or with O_DIRECT from a
    /// stage of `stages` when the blob has a direct descriptor.
    static func piece(
        _ request: PieceRequest, of blob: BlobDownload, share: OpaquePointer,
        config: EngineConfiguration, stages: StagePool?, now: Double
    ) throws(HaulError) -> Transfer {
        let url = request.url
        let range = request.range
        let job = blob.job
        guard let easy = curl_easy_init() else { throw .network(url: url, message: "could not create a curl handle") }
        guard
            let sink = Sink(
                fd: job.fd, range: range, total: job.size, acceptFull: request.acceptFull,
                hasher: blob.hasher)
        else {
            curl_easy_cleanup(easy)
            throw .network(url: url, message: "could not create a curl handle")
        }
        sink.attach(to: easy)
        var stage: (buffer: UnsafeMutableRawPointer, pool: StagePool)?
        if let fd = blob.directFD, let stages, let buffer = stages.take() {
            sink.useDirect(fd: fd, stage: buffer, capacity: stages.size)
            stage = (buffer, stages)
        }
        let t = Transfer(
            easy: easy, output: .file(sink), hasher: blob.hasher,
            purpose: .piece(blob: blob.id, transfer: request.transfer), url: url, now: now)
        t.stage = stage
        t.configure(
            url: url, headers: request.sendCredentials ? job.registryHeaders : [],
            followRedirects: request.followRedirects, tls: job.tls, share: share, config: config,
            addressPolicy: job.addressPolicy)
        t.check(hl_easy_setopt_str(easy, CURLOPT_RANGE, "\(range.lowerBound)-\(range.upperBound - 1)"), "CURLOPT_RANGE")
        return try t.verified()
    }

    /// The policy's id of a range request (0 for a fetch).
    var piece: UInt64 {
        if case .piece(_, let transfer) = purpose { return transfer }
        return 0
    }

    /// A GET whose body is kept in memory, up to `request.limit` bytes.
    static func fetch(
        id: UInt64, request: HTTPRequest, share: OpaquePointer,
        config: EngineConfiguration, now: Double
    ) throws(HaulError) -> Transfer {
        guard let easy = curl_easy_init() else {
            throw .network(url: request.url, message: "could not create a curl handle")
        }
        guard let body = ResponseBody(easy: easy, limit: request.limit) else {
            curl_easy_cleanup(easy)
            throw .network(url: request.url, message: "could not create a curl handle")
        }
        let t = Transfer(
            easy: easy, output: .memory(body), hasher: nil, purpose: .fetch(id: id), url: request.url,
            now: now)
        t.configure(
            url: request.url, headers: request.headers, followRedirects: request.followRedirects,
            tls: request.tls, share: share, config: config,
            addressPolicy: request.addressPolicy)
        if request.head { t.check(hl_easy_setopt_long(easy, CURLOPT_NOBODY, 1), "CURLOPT_NOBODY") }
        switch request.body {
        case nil:
            if request.method == "POST" || request.method == "PUT" || request.method == "PATCH" {
                // An empty body, announced as such (a registry's POST that
                // opens an upload, a PUT that closes one).
                t.check(hl_easy_setopt_long(easy, CURLOPT_POST, 1), "CURLOPT_POST")
                t.check(hl_easy_setopt_off(easy, CURLOPT_POSTFIELDSIZE_LARGE, 0), "CURLOPT_POSTFIELDSIZE_LARGE")
                t.check(hl_easy_setopt_str(easy, CURLOPT_COPYPOSTFIELDS, ""), "CURLOPT_COPYPOSTFIELDS")
            }
        case .bytes(let bytes):
            // curl copies the bytes (COPYPOSTFIELDS, after the size), so the
            // pointer need not outlive this call.
            t.check(hl_easy_setopt_long(easy, CURLOPT_POST, 1), "CURLOPT_POST")
            t.check(
                hl_easy_setopt_off(easy, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(bytes.count)),
                "CURLOPT_POSTFIELDSIZE_LARGE")
            var copy = bytes
            copy.withUnsafeMutableBytes { raw in
                t.check(hl_easy_setopt_ptr(easy, CURLOPT_COPYPOSTFIELDS, raw.baseAddress), "CURLOPT_COPYPOSTFIELDS")
            }
        case .file(let fd, let range, let md5):
            guard let upload = hl_upload_new(easy, fd, range.lowerBound, range.upperBound, md5 ? 1 : 0) else {
                t.close()
                throw .network(url: request.url, message: "could not set up the upload")
            }
            t.upload = upload
        }
        if let method = request.method {
            t.check(hl_easy_setopt_str(easy, CURLOPT_CUSTOMREQUEST, method), "CURLOPT_CUSTOMREQUEST")
        }
        return try t.verified()
    }

    private func configure(
        url: String, headers: [String], followRedirects: Bool, tls: HostTLS?,
        share: OpaquePointer, config: EngineConfiguration, addressPolicy: AddressPolicy
    ) {
        if !addressPolicy.allowPrivate {
            let guarded = ConnectionGuard(
                policy: addressPolicy, proxy: config.proxies.proxy(for: url).flatMap(ProxyEndpoint.init))
            guarded.easy = easy
            connectionGuard = guarded
            // A C function pointer passed through curl_easy_setopt's
            // variadic argument, as curl documents it.
            check(
                hl_easy_setopt_ptr(
                    easy, CURLOPT_OPENSOCKETFUNCTION,
                    unsafeBitCast(ConnectionGuard.callback, to: UnsafeMutableRawPointer.self)),
                "CURLOPT_OPENSOCKETFUNCTION")
            check(
                hl_easy_setopt_ptr(easy, CURLOPT_OPENSOCKETDATA, Unmanaged.passUnretained(guarded).toOpaque()),
                "CURLOPT_OPENSOCKETDATA")
        }
        // curl copies string options, so temporaries are fine here; only the
        // header list must outlive the request.
        check(hl_easy_setopt_str(easy, CURLOPT_URL, url), "CURLOPT_URL")
        check(hl_easy_setopt_ptr(easy, CURLOPT_SHARE, UnsafeMutableRawPointer(share)), "CURLOPT_SHARE")
        // One TCP connection per range: with HTTP/2 curl would multiplex all
        // ranges to a host over one connection and defeat per-connection
        // throttles and the slow-connection logic.
        check(hl_easy_setopt_long(easy, CURLOPT_HTTP_VERSION, Int(CURL_HTTP_VERSION_1_1)), "CURLOPT_HTTP_VERSION")
        check(hl_easy_setopt_long(easy, CURLOPT_NOSIGNAL, 1), "CURLOPT_NOSIGNAL")
        check(hl_easy_setopt_str(easy, CURLOPT_PROTOCOLS_STR, "http,https"), "CURLOPT_PROTOCOLS_STR")
        // Redirects curl follows may not leave http(s), nor downgrade an
        // https request to http, even with --insecure (Ollama #18512).
        let downgradeAllowed = !url.lowercased().hasPrefix("https:")
        check(
            hl_easy_setopt_str(easy, CURLOPT_REDIR_PROTOCOLS_STR, downgradeAllowed ? "http,https" : "https"),
            "CURLOPT_REDIR_PROTOCOLS_STR")
        check(hl_easy_setopt_long(easy, CURLOPT_FOLLOWLOCATION, followRedirects ? 1 : 0), "CURLOPT_FOLLOWLOCATION")
        check(hl_easy_setopt_long(easy, CURLOPT_MAXREDIRS, 10), "CURLOPT_MAXREDIRS")
        check(
            hl_easy_setopt_long(easy, CURLOPT_CONNECTTIMEOUT, Self.wholeSeconds(config.connectTimeout)),
            "CURLOPT_CONNECTTIMEOUT")
        // Stall guard: abort when fewer than 1 byte/s arrives for the timeout.
        check(hl_easy_setopt_long(easy, CURLOPT_LOW_SPEED_LIMIT, 1), "CURLOPT_LOW_SPEED_LIMIT")
        check(
            hl_easy_setopt_long(easy, CURLOPT_LOW_SPEED_TIME, Self.wholeSeconds(config.stallTimeout)),
            "CURLOPT_LOW_SPEED_TIME")
        check(hl_easy_setopt_long(easy, CURLOPT_TCP_KEEPALIVE, 1), "CURLOPT_TCP_KEEPALIVE")
        check(hl_easy_setopt_long(easy, CURLOPT_BUFFERSIZE, config.receiveBufferSize), "CURLOPT_BUFFERSIZE")
        check(hl_easy_setopt_str(easy, CURLOPT_USERAGENT, config.userAgent), "CURLOPT_USERAGENT")
        if let ca = tls?.caFile ?? config.caFile {
            check(hl_easy_setopt_str(easy, CURLOPT_CAINFO, ca), "CURLOPT_CAINFO")
        }
        if let dir = config.caDirectory { check(hl_easy_setopt_str(easy, CURLOPT_CAPATH, dir), "CURLOPT_CAPATH") }
        if config.skipTLSVerification || tls?.skipVerify == true {
            check(hl_easy_setopt_long(easy, CURLOPT_SSL_VERIFYPEER, 0), "CURLOPT_SSL_VERIFYPEER")
            check(hl_easy_setopt_long(easy, CURLOPT_SSL_VERIFYHOST, 0), "CURLOPT_SSL_VERIFYHOST")
        }
        // The proxy is chosen here, by Go's rules; an empty string stops
        // curl from applying its own (different) reading of the environment.
        check(hl_easy_setopt_str(easy, CURLOPT_PROXY, config.proxies.proxy(for: url) ?? ""), "CURLOPT_PROXY")
        if let noProxy = config.proxies.noProxy {
            check(hl_easy_setopt_str(easy, CURLOPT_NOPROXY, noProxy), "CURLOPT_NOPROXY")
        }
        for h in headers { headerList = curl_slist_append(headerList, h) }
        if let headerList {
            check(
                hl_easy_setopt_ptr(easy, CURLOPT_HTTPHEADER, UnsafeMutableRawPointer(headerList)), "CURLOPT_HTTPHEADER")
        }
    }

    /// curl takes these limits in whole seconds; a fraction counts as one.
    private static func wholeSeconds(_ duration: Duration) -> Int {
        Int(MonotonicClock.seconds(duration).rounded(.up))
    }

    /// Releases curl and C memory. The handle must already be out of the
    /// multi handle.
    func close() {
        guard !closed else { return }
        closed = true
        curl_easy_cleanup(easy)
        curl_slist_free_all(headerList)
        if let upload { hl_upload_free(upload) }
        if let stage { stage.pool.give(stage.buffer) }
    }

    deinit {
        assert(closed, "Transfer must be closed by the loop before it is released")
        errorBuffer.deallocate()
    }

    var status: Int {
        var code = 0
        _ = hl_easy_getinfo_long(easy, CURLINFO_RESPONSE_CODE, &code)
        return code
    }

    /// errno of a failed read of an upload's file, or 0.
    var uploadError: Int32 { upload.map { hl_upload_error($0) } ?? 0 }

    /// The MD5 of an upload's body, when asked for and sent whole.
    var uploadMD5: [UInt8]? {
        guard let upload else { return nil }
        var out = [UInt8](repeating: 0, count: 16)
        return hl_upload_md5(upload, &out) == 0 ? out : nil
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

    /// curl's error text for the transfer.
    private var curlError: String { String(cString: errorBuffer) }

    /// curl's explanation of a failed transfer, in words a user can act on.
    func errorText(_ code: CURLcode) -> String {
        let buffer = curlError
        let curl = buffer.isEmpty ? String(cString: curl_easy_strerror(code)) : buffer
        if headersTooLarge(code) {
            return
                "the server's response headers are larger than Haul accepts (a broken or hostile server; curl: \(curl))"
        }
        return curl
    }

    /// Response headers past curl's limit: reported as CURLE_RECV_ERROR by
    /// curl 7.x, CURLE_OUT_OF_MEMORY by some, CURLE_TOO_LARGE (100) from
    /// 8.6. Not a glitch to retry.
    func headersTooLarge(_ code: CURLcode) -> Bool {
        guard code != CURLE_OK else { return false }
        let buffer = curlError
        return code == CURLE_OUT_OF_MEMORY || code.rawValue == 100 || buffer.hasPrefix("Too large response header")
    }

    /// A direct-I/O stage that has not been written for half a second is
    /// written as far as whole pages go: a slow connection would otherwise
    /// hold its bytes off the disk (and out of checkpoints) until it fills.
    func drainIfSlow(now: Double) {
        guard stage != nil, now - lastWriteAt >= 0.5 else { return }
        switch output {
        case .file(let sink): sink.drain()
        case .memory: break
        }
        lastWriteAt = now
    }

    /// Folds the bytes received since the last sample into an exponentially
    /// weighted rate, at most every quarter second.
    func sampleRate(now: Double) {
        let dt = now - sampleTime
        guard dt >= 0.25 else { return }
        let state = self.state
        if state.offset > lastWritten { (lastWritten, lastWriteAt) = (state.offset, now) }
        // Bytes held in a stage count: a slow connection fills it slowly.
        let offset = state.received
        if offset > sampleOffset { lastByteAt = now }
        let instant = Double(offset - sampleOffset) / dt
        rate = rate.map { 0.5 * $0 + 0.5 * instant } ?? instant
        sampleTime = now
        sampleOffset = offset
    }
}
