import CallQueue
import Foundation
import Hummingbird
import Synchronization

/// The example image server: a "gpu" group of `slots` simulated GPUs and an unlimited "cpu" group, routes
/// for image jobs and chat calls (which share the GPUs), their events (statuses, tokens and previews),
/// results and previews, the queue, and the web page.
public struct ImageServer: Sendable {
    public let options: ServerOptions
    public let queue: CallQueue
    public let gpu: SimulatedGPU
    public let chat: SimulatedChat
    /// What `GET /metrics` answers.
    public let metrics: ServerMetrics
    /// Event streams open now, per client.
    let streams: EventStreams

    /// The number of event streams open now.
    public var openEventStreams: Int { streams.count }

    public init(options: ServerOptions) throws {
        try self.init(options: options, beforeToken: nil)
    }

    /// A server whose chat calls await `beforeToken` before each token, after the server's own hold.
    init(options: ServerOptions, beforeToken: (@Sendable (Int) async throws -> Void)?) throws {
        self.options = options
        let gpu = SimulatedGPU(stepDuration: options.stepDuration)
        let metrics = ServerMetrics()
        self.metrics = metrics
        streams = EventStreams(limitPerClient: options.maxStreamsPerClient)
        queue = try CallQueue(
            configuration: .init(
                groups: [
                    // Clients are served in turn, each with at most `maxQueuedPerClient` waiting; the queue keeps
                    // each call's session with its status, which is how a route knows whose a job is.
                    "gpu": .init(
                        limit: .limited(options.slots), maxQueueSize: options.maxQueue,
                        discipline: .fairShare(
                            FairShare(maxQueuedPerKey: options.maxQueuedPerClient, reportsKeys: true))),
                    "cpu": .init(limit: .unlimited),
                ],
                finishedTaskHistory: options.history,
                resultHistory: options.history,
                // A finished job is kept for a time, within a byte budget for its image: a slow or reloading
                // client finds it again, and a flood of finished jobs cannot take the server's memory.
                finishedTaskMaxAge: options.keepFinished,
                resultHistoryBytes: options.resultBytes,
                initialRunTimeEstimate: options.stepDuration * 20,
                observer: metrics.observer,
                // Each job's memory peak, read from the simulated GPU as NVML reads a real one.
                memorySampler: MemorySampler(monitor: gpu.memoryMonitor),
                undeclaredGroups: .reject,
                positionUpdateInterval: options.positionUpdateInterval,
                positionUpdateFraction: options.positionUpdateFraction
            ))
        self.gpu = gpu
        chat = SimulatedChat(tokenDuration: options.tokenDuration) { index in
            try await gpu.waitWhileHeld()
            try await beforeToken?(index)
        }
    }

    /// The application, bound to the options' host and port.
    public func buildApplication() -> some ApplicationProtocol {
        Application(
            router: buildRouter(),
            // A connection idle, or slow to send its request, for `idleTimeout` is closed; a stream being
            // answered is not idle.
            server: .http1(configuration: .init(idleTimeout: .nanoseconds(Int64(options.idleTimeout.seconds * 1e9)))),
            configuration: .init(
                address: .hostname(options.host, port: options.port), serverName: "ImageServer",
                // Thousands of clients may connect at once, each holding an event stream.
                backlog: 4_096)
        )
    }

    public func buildRouter() -> Router<BasicRequestContext> {
        let router = Router()
        let queue = queue
        let gpu = gpu
        let chat = chat
        let metrics = metrics
        let streams = streams
        let heartbeat = options.heartbeat

        router.get("/") { _, _ in try Self.resource("index", "html", as: "text/html; charset=utf-8") }
        // The routes' OpenAPI document, kept beside the code; CI checks the live server against it.
        router.get("openapi.json") { _, _ in try Self.resource("openapi", "json", as: "application/json") }

        // Admit a job and answer its id at once: 202 {"task_id"}, 429 when this client has enough waiting, 503
        // when the queue is full, 400 on a bad body.
        router.post("jobs") { request, _ -> Response in
            try await Self.admit(request, as: JobRequest.self, options: options, metrics: metrics) { job, session in
                try queue.submit(group: "gpu", fairness: session.fairness) { context in
                    try await gpu.generate(
                        prompt: job.prompt, steps: job.steps, seed: job.seed, stepDuration: job.stepDuration,
                        context: context)
                }.id
            }
        }

        router.get("jobs/:id") { request, context -> Response in
            let id = try Self.taskID(context)
            return try await Self.owned(id, request, queue) { status in try Self.json(Self.shown(status)) }
        }

        // A chat call: the simulated text model runs in the same "gpu" group and emits its tokens as they come.
        router.post("chat") { request, _ -> Response in
            try await Self.admit(request, as: ChatRequest.self, options: options, metrics: metrics) { call, session in
                try queue.submit(group: "gpu", fairness: session.fairness) { context in
                    try await chat.generate(prompt: call.prompt, tokens: call.tokens, seed: call.seed, context: context)
                }.id
            }
        }

        // Server-sent events: every status change until the job ends, each token of a chat call as it comes
        // (with its index as the event's id), a note when a newer preview exists, and a heartbeat comment
        // while idle. A client that reconnects with Last-Event-ID resumes after that token. A client that
        // goes away ends its stream, never its job.
        router.get("jobs/:id/events") { request, context -> Response in
            let id = try Self.taskID(context)
            let lastEventID = Self.lastEventID(request)
            guard let session = ClientSession.of(request), let status = try? queue.status(of: id),
                session.owns(status),
                let outputs = try? queue.outputs(of: id, latest: Preview.self, chunks: String.self, after: lastEventID)
            else { return try Self.notFound(id) }
            guard let place = streams.open(for: session.token) else {
                let message = "this client has \(streams.limitPerClient) event streams open; close one first"
                return try Self.error(.tooManyRequests, code: "tooManyStreams", message: message)
            }
            return Response(
                status: .ok,
                headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"],
                body: ResponseBody { writer in
                    defer { withExtendedLifetime(place) {} }
                    try await Self.stream(outputs, heartbeat: heartbeat) { text in
                        try await writer.write(ByteBuffer(string: text))
                    }
                    try await writer.finish(nil)
                }
            )
        }

        router.delete("jobs/:id") { request, context -> Response in
            let id = try Self.taskID(context)
            return try await Self.owned(id, request, queue) { _ in
                try Self.json(["cancelled": try queue.cancel(id)], status: .accepted)
            }
        }

        router.get("jobs/:id/result") { request, context -> Response in
            let id = try Self.taskID(context)
            return try await Self.owned(id, request, queue) { status in
                guard status.state.finished?.outcome == .succeeded else {
                    return try Self.json(["status": Self.shown(status)], status: .conflict)
                }
                switch queue.result(of: id) {
                case let png as [UInt8]: return Self.png(png)
                case let text as String: return try Self.json(["text": text])
                default:
                    return try Self.error(.gone, code: "forgotten", message: "the result of '\(id)' is no longer kept")
                }
            }
        }

        router.get("jobs/:id/preview") { request, context -> Response in
            let id = try Self.taskID(context)
            return try await Self.owned(id, request, queue) { _ in
                // The job's latest partial output, from the queue: while it runs, and after it finished.
                guard let png = queue.latestOutput(of: id, as: Preview.self)?.png else {
                    return try Self.error(.notFound, code: "noPreview", message: "no preview of '\(id)' yet")
                }
                return Self.png(png)
            }
        }

        // "Describe image": a cheap call in the unlimited "cpu" group.
        router.get("jobs/:id/description") { request, context -> Response in
            let id = try Self.taskID(context)
            return try await Self.owned(id, request, queue) { _ in
                guard let png = queue.result(of: id) as? [UInt8] else {
                    return try Self.error(.notFound, code: "noImage", message: "no image of '\(id)'")
                }
                let text = try await queue.runGPUCall(group: "cpu") { _ in SimulatedGPU.describe(png) }
                return try Self.json(["description": text])
            }
        }

        // Prometheus' text format: the queue's series (waiting, running, wait and run times, failures, memory
        // peaks) and the refusals by code. Counts only, like `/queue`: no ids, no sessions.
        router.get("metrics") { _, _ -> Response in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(bytes: metrics.render())))
        }

        // Counts for everyone, and the caller's own live jobs; never another client's ids.
        router.get("queue") { request, _ -> Response in
            let session = ClientSession.of(request)
            let mine = session.map { session in queue.liveTasks.filter(session.owns).map(\.id.rawValue) } ?? []
            return try Self.json(QueueReport(queue.groups, yourJobs: mine, mostRunningBodies: gpu.mostRunningAtOnce))
        }

        if options.testHooks { Self.addTestHooks(to: router, gpu: gpu) }
        return router
    }

    /// The load test's and the browser test's routes, only with `--test-hooks`: anyone reaching them could
    /// stall the GPU for everyone.
    static func addTestHooks(to router: Router<BasicRequestContext>, gpu: SimulatedGPU) {
        // Instrumentation for the load test: the bodies' spans and the most running at once.
        router.get("debug/stats") { _, _ -> Response in
            let stats = gpu.stats
            return try Self.json(BodyStats(most: stats.most, spans: stats.spans))
        }
        router.post("debug/reset") { _, _ -> Response in
            gpu.resetStats()
            return try Self.json(["reset": true])
        }
        // For the browser test: hold every running job between steps, and let them go.
        router.post("debug/hold") { _, _ -> Response in
            gpu.hold(true)
            return try Self.json(["held": true])
        }
        router.post("debug/release") { _, _ -> Response in
            gpu.hold(false)
            return try Self.json(["held": false])
        }
    }

    /// Writes a job's events with `write` until the job ends: every status change, each token (with its index
    /// as the event's id), a note when a newer preview exists, and a heartbeat comment while idle. An update is
    /// taken from the queue only once the one before it is written, so a slow client costs the queue's bounded
    /// window, not a buffer here. A client that goes away ends the stream, never the job.
    static func stream(
        _ outputs: TaskOutputs<Preview, String>, heartbeat: Duration,
        write: (String) async throws -> Void
    ) async throws {
        let (events, sink) = AsyncStream.makeStream(of: WrittenEvent.self)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                defer { sink.finish() }
                for await update in outputs {
                    let written = OpenOnce()
                    sink.yield(WrittenEvent(text: try Self.events(of: update), written: written))
                    await written.wait()
                    try Task.checkCancellation()
                }
            }
            group.addTask {
                while true {
                    try await Task.sleep(for: heartbeat)
                    sink.yield(WrittenEvent(text: ": heartbeat\n\n", written: nil))
                }
            }
            defer { group.cancelAll() }
            for await event in events {
                try await write(event.text)
                event.written?.open()
            }
        }
    }

    struct BodyStats: Encodable {
        var most: Int
        var spans: [SimulatedGPU.Span]
    }

    struct QueueReport: Encodable {
        /// A group's counts, without the ids of its running jobs.
        struct Counts: Encodable {
            var group: ConcurrencyGroupID
            var limit: Int?
            var runningCount: Int
            var waiting: Int
        }

        var groups: [Counts]
        var yourJobs: [String]
        var mostRunningBodies: Int

        init(_ groups: [GroupSnapshot], yourJobs: [String], mostRunningBodies: Int) {
            self.groups = groups.map {
                Counts(group: $0.group, limit: $0.limit, runningCount: $0.runningCount, waiting: $0.waiting)
            }
            self.yourJobs = yourJobs
            self.mostRunningBodies = mostRunningBodies
        }
    }

    // MARK: Responses

    /// Admits the call `submit` makes for a request's checked JSON body, for the client's session (a new one
    /// when the request carries none), and answers its id at once: 202 {"task_id", "owner_token"} with the
    /// session's cookie; 400 saying what is wrong with a bad body, with nothing registered; 429 when this client
    /// has enough waiting, 503 when the queue is full or the wait too long, both with `Retry-After`.
    static func admit<Body: CheckedRequest>(
        _ request: Request, as type: Body.Type, options: ServerOptions, metrics: ServerMetrics,
        _ submit: (Body.Checked, ClientSession) throws -> TaskID
    ) async throws -> Response {
        let checked: Body.Checked
        do {
            let body = try await request.body.collect(upTo: Self.maxBodyBytes)
            checked = try JSONDecoder().decode(Body.self, from: Data(buffer: body)).validated(under: options)
        } catch let error as HTTPError where error.status == .contentTooLarge {
            return try Self.error(.badRequest, code: "badRequest", message: "the body is larger than 64 KiB")
        } catch let error as BadRequest {
            return try Self.error(.badRequest, code: "badRequest", message: error.message)
        } catch {
            let message = "the body must be JSON like \(Body.example)"
            return try Self.error(.badRequest, code: "badRequest", message: message)
        }
        let known = ClientSession.of(request)
        let session = known ?? .make()
        do {
            let id = try submit(checked, session)
            var response = try Self.json(["task_id": id.rawValue, "owner_token": session.token], status: .accepted)
            if known == nil { response.headers[.setCookie] = session.setCookie }
            return response
        } catch var error as CallQueueError {
            metrics.refused(error)
            // The session is the call's fairness key: the refusal names it, and the client must not see it
            // echoed where a log or a proxy keeps it.
            error.fairnessKey = nil
            error.message = error.message.replacingOccurrences(of: session.token, with: "this client")
            let status: HTTPResponse.Status
            switch error.code {
            case .tooManyQueued: status = .tooManyRequests
            case .queueFull, .waitTooLong: status = .serviceUnavailable
            default: status = .badRequest
            }
            var response = try Self.json(["error": error], status: status)
            if let seconds = error.retryAfterSeconds { response.headers[.retryAfter] = String(seconds) }
            return response
        }
    }

    /// Answers `body` with the job's status when the request's session owns it; otherwise 404, exactly as for
    /// an id the queue does not know, so that nobody learns whether another client's id exists.
    static func owned(
        _ id: TaskID, _ request: Request, _ queue: CallQueue, _ body: (TaskStatus) async throws -> Response
    ) async throws -> Response {
        guard let status = try? queue.status(of: id), ClientSession.of(request)?.owns(status) == true else {
            return try notFound(id)
        }
        return try await body(status)
    }

    /// The one answer for an id that is unknown, forgotten, or another client's.
    static func notFound(_ id: TaskID) throws -> Response {
        try error(.notFound, code: "unknownTask", message: "no job of yours has the id '\(id)'")
    }

    /// A status as a client sees it: without its session, the fairness key the queue keeps with it.
    static func shown(_ status: TaskStatus) -> TaskStatus {
        var status = status
        status.fairnessKey = nil
        return status
    }

    /// The largest request body taken.
    static let maxBodyBytes = 64 * 1024

    /// The `Last-Event-ID` an `EventSource` sends when it reconnects: the index of the last token it got.
    static func lastEventID(_ request: Request) -> Int? {
        request.headers.first { $0.name.canonicalName == "last-event-id" }.flatMap { Int($0.value) }
    }

    /// The server-sent events of one update: its tokens first (each with its index as the event's id), a
    /// note of tokens the client missed, a preview note, then the status. A preview's picture is fetched from
    /// `/jobs/:id/preview` by the page, not sent to every reader.
    static func events(of update: TaskOutputUpdate<Preview, String>) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        var text = ""
        if update.missedChunks > 0 {
            text += "event: missed\ndata: {\"count\":\(update.missedChunks)}\n\n"
        }
        for chunk in update.chunks {
            let data = String(decoding: try encoder.encode(chunk.value), as: UTF8.self)
            text += "id: \(chunk.index)\nevent: token\ndata: \(data)\n\n"
        }
        if let preview = update.latest {
            text += "event: preview\ndata: {\"step\":\(preview.step)}\n\n"
        }
        if let status = update.status {
            let data = String(decoding: try encoder.encode(shown(status)), as: UTF8.self)
            text += "event: status\ndata: \(data)\n\n"
        }
        return text
    }

    /// The path's task id, percent-decoded: a client may send `task(x)` as `task%28x%29`, and both name one job.
    static func taskID(_ context: BasicRequestContext) throws -> TaskID {
        let raw = try context.parameters.require("id")
        return TaskID(raw.removingPercentEncoding ?? raw)
    }

    static func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys  // the same answer is the same bytes
        return Response(
            status: status,
            headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: try encoder.encode(value)))
        )
    }

    /// `{"error": {"code", "message"}}`, its fields always in that order.
    static func error(_ status: HTTPResponse.Status, code: String, message: String) throws -> Response {
        struct Body: Encodable {
            struct Detail: Encodable {
                var code: String
                var message: String
            }
            var error: Detail
        }
        return try json(Body(error: .init(code: code, message: message)), status: status)
    }

    static func png(_ bytes: [UInt8]) -> Response {
        Response(
            status: .ok,
            headers: [.contentType: "image/png", .cacheControl: "no-store"],
            body: .init(byteBuffer: ByteBuffer(bytes: bytes))
        )
    }

    /// A file of the bundle's, as `type`.
    static func resource(_ name: String, _ fileExtension: String, as type: String) throws -> Response {
        guard let url = Bundle.module.url(forResource: name, withExtension: fileExtension) else {
            throw HTTPError(.internalServerError, message: "\(name).\(fileExtension) is missing from the bundle")
        }
        return Response(
            status: .ok,
            headers: [.contentType: type],
            body: .init(byteBuffer: ByteBuffer(bytes: try Data(contentsOf: url)))
        )
    }
}
