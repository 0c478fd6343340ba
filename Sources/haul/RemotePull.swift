import Foundation
import HaulKit
import Synchronization

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A pull run by a Haul or Ollama daemon: `POST /api/pull` with the
/// ollama CLI's request, its NDJSON stream read back into pull events.
struct RemotePull {
    let server: OllamaHost
    let name: String
    let insecure: Bool
    /// A list child's runner, passed on as `/api/pull`'s `runner`.
    var runner: String? = nil

    struct ServerError: Error, CustomStringConvertible {
        let description: String
    }

    /// A pull in progress: its events, and a way to stop it.
    struct Running: Sendable {
        let events: AsyncThrowingStream<PullEvent, any Error>
        private let continuation: AsyncThrowingStream<PullEvent, any Error>.Continuation

        init(
            _ events: AsyncThrowingStream<PullEvent, any Error>,
            _ continuation: AsyncThrowingStream<PullEvent, any Error>.Continuation
        ) {
            (self.events, self.continuation) = (events, continuation)
        }

        /// Closes the request, which leaves the server free to cancel the
        /// download; the events end with `HaulError.cancelled`.
        func cancel() { continuation.finish(throwing: HaulError.cancelled) }
    }

    /// Sends the request. Stopping the iteration also closes it.
    /// Ollama's `PullRequest`, as the daemon reads it.
    private struct Body: Encodable {
        let model: String
        let insecure: Bool
        let runner: String?
        let stream: Bool
    }

    func start() -> Running {
        let (stream, continuation) = AsyncThrowingStream.makeStream(of: PullEvent.self)
        let running = Running(stream, continuation)
        guard let url = URL(string: server.clientURL + "/api/pull") else {
            continuation.finish(throwing: ServerError(description: "invalid OLLAMA_HOST: \(server)"))
            return running
        }
        var request = URLRequest(url: url)
        request.httpMethod = "POST"
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.setValue("application/x-ndjson", forHTTPHeaderField: "Accept")
        request.setValue(Versions.userAgent, forHTTPHeaderField: "User-Agent")
        request.httpBody = try? OrderedJSONEncoder().encode(
            Body(model: name, insecure: insecure, runner: runner, stream: true))
        request.timeoutInterval = 24 * 3600
        let reader = StreamReader(continuation: continuation)
        let session = URLSession(configuration: .ephemeral, delegate: reader, delegateQueue: nil)
        let task = session.dataTask(with: request)
        continuation.onTermination = { _ in
            task.cancel()
            session.invalidateAndCancel()
        }
        task.resume()
        return running
    }
}

/// Splits the response into lines and hands each to the stream. URLSession
/// calls a delegate's methods one at a time, in order, on its serial
/// delegate queue; the only mutable state is behind a mutex regardless.
private final class StreamReader: NSObject, URLSessionDataDelegate, Sendable {
    private let continuation: AsyncThrowingStream<PullEvent, any Error>.Continuation
    private struct State {
        var status = 0
        var lines = LineSplitter()
        /// The start of a non-200 answer's body, for the error message.
        var body: [UInt8] = []
        var failed = false
        var succeeded = false
    }

    private let state = Mutex(State())

    init(continuation: AsyncThrowingStream<PullEvent, any Error>.Continuation) {
        self.continuation = continuation
    }

    func urlSession(
        _ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
        completionHandler: @escaping (URLSession.ResponseDisposition) -> Void
    ) {
        state.withLock { $0.status = (response as? HTTPURLResponse)?.statusCode ?? 0 }
        completionHandler(.allow)
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
        let failed = state.withLock { state -> Bool in
            guard state.status == 200 else {
                state.body.append(contentsOf: data.prefix(max(0, 64 << 10 - state.body.count)))
                return false
            }
            guard !state.failed else { return true }
            do {
                for line in try state.lines.feed(data) {
                    switch try ProgressJSON.parse(line) {
                    case .event(let event):
                        if event == .success { state.succeeded = true }
                        continuation.yield(event)
                    case .error(let message):
                        state.failed = true
                        continuation.finish(throwing: RemotePull.ServerError(description: message))
                        return true
                    case nil: break
                    }
                }
            } catch {
                state.failed = true
                continuation.finish(throwing: error)
            }
            return state.failed
        }
        // A broken stream is not read any further.
        if failed { dataTask.cancel() }
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: (any Error)?) {
        session.finishTasksAndInvalidate()
        let (status, body, failed, succeeded) = state.withLock { ($0.status, $0.body, $0.failed, $0.succeeded) }
        if failed { return }
        if let error {
            continuation.finish(
                throwing: RemotePull.ServerError(
                    description:
                        "\(task.originalRequest?.url?.absoluteString ?? "server"): \(error.localizedDescription)"))
        } else if status != 200 {
            // Ollama's error body is {"error": "..."}; anything else is shown as is.
            let message: String
            if case .error(let text)? = try? ProgressJSON.parse(body) {
                message = text
            } else {
                message = String(decoding: body.prefix(512), as: UTF8.self)
            }
            // Go's http.Status form, as the ollama CLI prints it: "400 Bad Request: …".
            let reason = HTTPURLResponse.localizedString(forStatusCode: status).capitalized
            continuation.finish(throwing: RemotePull.ServerError(description: "\(status) \(reason): \(message)"))
        } else if !succeeded {
            continuation.finish(
                throwing: RemotePull.ServerError(description: "the server ended the stream before the pull finished"))
        } else {
            continuation.finish()
        }
    }
}
