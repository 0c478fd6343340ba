import Foundation
import HaulKit
import Hummingbird

/// `GET /metrics`: the daemon's metrics in Prometheus' text format
/// (version 0.0.4), behind the same access rules as every other route.
struct MetricsController {
    let metrics: DaemonMetrics
    let store: ModelStore

    func addRoutes<Context: RequestContext>(to router: some RouterMethods<Context>) {
        router.get("/metrics") { _, _ in
            let text = metrics.render(store: store)
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: text)))
        }
    }
}

/// Counts each request that reached a route and records its latency, by
/// the route's pattern (bounded: never the path a client sent), once its
/// body is written (a pull's stream is timed to its last line).
struct RequestMetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    let metrics: DaemonMetrics
    static var methods: Set<String> { ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        let start = ContinuousClock.now
        let method = Self.methods.contains(request.method.rawValue) ? request.method.rawValue : "other"
        let route = context.endpointPath ?? "unmatched"
        do {
            var response = try await next(request, context)
            let status = response.status.code
            let metrics = metrics
            let body = response.body
            response.body = ResponseBody(contentLength: body.contentLength) { writer in
                do {
                    try await body.write(writer)
                } catch {
                    metrics.request(route: route, method: method, status: status, seconds: Self.seconds(since: start))
                    throw error
                }
                metrics.request(route: route, method: method, status: status, seconds: Self.seconds(since: start))
            }
            return response
        } catch {
            let status = (error as? any HTTPResponseError)?.status.code ?? 500
            metrics.request(route: route, method: method, status: status, seconds: Self.seconds(since: start))
            throw error
        }
    }

    private static func seconds(since start: ContinuousClock.Instant) -> Double {
        let d = start.duration(to: .now)
        return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }
}
