internal import CShims
import Foundation

/// What a finished transfer amounts to, read off curl and its sink: a
/// range request's outcome for the policy, a fetch's response for its
/// caller.
extension Transfer {
    /// How this range request ended, read off curl and the sink for the
    /// policy. Call once the handle is out of the multi handle and the sink
    /// flushed.
    func outcome(code: CURLcode, blobSize: Int64) -> PieceOutcome {
        let s = state
        let status = self.status
        var o = PieceOutcome(url: url, start: s.start, offset: s.offset, stopAt: s.stopAt)
        o.status = status
        o.verdict = s.verdict
        o.checked = s.checked
        o.completed = code == CURLE_OK
        o.unretryable = headersTooLarge(code) || connectionGuard?.refusal != nil
        o.writeErrno = s.errno
        if (300..<400).contains(status) { o.redirectURL = redirectURL }
        o.servedSize = servedSize()
        o.retryAfter = header("Retry-After")
        if status == 401 { o.challenge = header("WWW-Authenticate") }
        let done = o.verdict == .stopped || (o.completed && o.remainder.isEmpty && o.checked)
        if !done { o.why = failureText(code: code, status: status, blobSize: blobSize) }
        return o
    }

    /// A fetch's result: its status, headers and in-memory body, or why it
    /// has none.
    func response(code: CURLcode) -> Result<HTTPResponse, any Error> {
        let body = self.body
        if body.tooLarge {
            return .failure(HaulError.network(url: url, message: "response larger than \(body.limit) bytes"))
        }
        if code == CURLE_UNSUPPORTED_PROTOCOL, let target = redirectURL {
            return .failure(HaulError.network(url: url, message: SourceResolver.refusal(redirectTo: target)))
        }
        if uploadError != 0 {
            return .failure(
                HaulError.network(
                    url: url, message: "reading the blob to send failed: \(String(cString: strerror(uploadError)))"))
        }
        if code != CURLE_OK {
            return .failure(HaulError.network(url: url, message: connectionGuard?.refusal ?? errorText(code)))
        }
        var headers: [String: String] = [:]
        for name in HTTPResponse.capturedHeaders {
            if let v = header(name) { headers[name] = v }
        }
        return .success(
            HTTPResponse(
                status: status, body: body.bytes, redirectURL: redirectURL,
                effectiveURL: effectiveURL, headers: headers, bodyMD5: uploadMD5))
    }

    private func failureText(code: CURLcode, status: Int, blobSize: Int64) -> String {
        let s = state
        let host = URLParts(url)?.host ?? "server"
        switch s.verdict {
        case .badContentRange:
            let got = header("Content-Range").map { "\"\(HaulError.quoted($0))\"" } ?? "none"
            return "\(host) answered bytes \(s.start)-\(s.end - 1) with Content-Range \(got)"
        case .badLength:
            return "\(host) sent a Content-Length that is not the blob size \(blobSize)"
        case .overlong:
            return "\(host) sent more than the requested bytes \(s.start)-\(s.end - 1)"
        case .badStatus:
            let body = errorBody.trimmingCharacters(in: .whitespacesAndNewlines)
            return body.isEmpty
                ? "\(host) answered \(status)" : "\(host) answered \(status): \(HaulError.quoted(body, limit: 200))"
        default:
            break
        }
        if code != CURLE_OK { return connectionGuard?.refusal ?? errorText(code) }
        if !s.checked { return "\(host) answered \(status) with no body" }
        return "unexpected EOF: \(host) sent \(s.offset - s.start) of \(s.stopAt - s.start) bytes"
    }

    /// The blob size a refused response announced, when it announced one.
    private func servedSize() -> Int64? {
        switch state.verdict {
        case .badContentRange:
            var first: Int64 = 0
            var last: Int64 = 0
            var total: Int64 = 0
            guard let value = header("Content-Range"), hl_parse_content_range(value, &first, &last, &total) == 0,
                total >= 0
            else { return nil }
            return total
        case .badLength:
            var length: curl_off_t = -1
            _ = hl_easy_getinfo_off(easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length)
            return length >= 0 ? Int64(length) : nil
        default:
            return nil
        }
    }
}
