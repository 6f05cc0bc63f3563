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
    /// Event streams open now.
    let streams = StreamCount()

    /// The number of event streams open now.
    public var openEventStreams: Int { streams.count }

    public init(options: ServerOptions) throws {
        try self.init(options: options, beforeToken: nil)
    }

    /// A server whose chat calls await `beforeToken` before each token, after the server's own hold.
    init(options: ServerOptions, beforeToken: (@Sendable (Int) async throws -> Void)?) throws {
        self.options = options
        queue = try CallQueue(
            configuration: .init(
                groups: [
                    "gpu": .init(limit: .limited(options.slots), maxQueueSize: options.maxQueue),
                    "cpu": .init(limit: .unlimited),
                ],
                finishedTaskHistory: options.history,
                resultHistory: options.history,
                initialRunTimeEstimate: options.stepDuration * 20,
                undeclaredGroups: .reject,
                positionUpdateInterval: options.positionUpdateInterval,
                positionUpdateFraction: options.positionUpdateFraction
            ))
        let gpu = SimulatedGPU(stepDuration: options.stepDuration)
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
        let streams = streams
        let heartbeat = options.heartbeat

        router.get("/") { _, _ in try Self.page() }

        // Admit a job and answer its id at once: 202 {"task_id"}, 503 when the queue is full, 400 on a bad body.
        router.post("jobs") { request, _ -> Response in
            try await Self.admit(request, as: JobRequest.self) { job in
                try queue.submit(group: "gpu") { context in
                    try await gpu.generate(
                        prompt: job.prompt, steps: job.steps, seed: job.seed, stepDuration: job.stepDuration,
                        context: context)
                }.id
            }
        }

        router.get("jobs/:id") { _, context -> Response in
            let id = try Self.taskID(context)
            return try Self.found(id) { try Self.json(try queue.status(of: id)) }
        }

        // A chat call: the simulated text model runs in the same "gpu" group and emits its tokens as they come.
        router.post("chat") { request, _ -> Response in
            try await Self.admit(request, as: ChatRequest.self) { call in
                try queue.submit(group: "gpu") { context in
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
            let outputs: TaskOutputs<Preview, String>
            do {
                outputs = try queue.outputs(of: id, latest: Preview.self, chunks: String.self, after: lastEventID)
            } catch let error as CallQueueError where error.code == .unknownTask {
                return try Self.error(.notFound, code: "unknownTask", message: error.message)
            }
            return Response(
                status: .ok,
                headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"],
                body: ResponseBody { writer in
                    streams.add(1)
                    defer { streams.add(-1) }
                    let (events, sink) = AsyncStream.makeStream(of: String.self)
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        group.addTask {
                            for await update in outputs { sink.yield(try Self.events(of: update)) }
                            sink.finish()
                        }
                        group.addTask {
                            while true {
                                try await Task.sleep(for: heartbeat)
                                sink.yield(": heartbeat\n\n")
                            }
                        }
                        for await event in events {
                            try await writer.write(ByteBuffer(string: event))
                        }
                        group.cancelAll()
                    }
                    try await writer.finish(nil)
                }
            )
        }

        router.delete("jobs/:id") { _, context -> Response in
            let id = try Self.taskID(context)
            return try Self.found(id) { try Self.json(["cancelled": try queue.cancel(id)], status: .accepted) }
        }

        router.get("jobs/:id/result") { _, context -> Response in
            let id = try Self.taskID(context)
            return try Self.found(id) {
                let status = try queue.status(of: id)
                guard status.state.finished?.outcome == .succeeded else {
                    return try Self.json(["status": status], status: .conflict)
                }
                switch queue.result(of: id) {
                case let png as [UInt8]: return Self.png(png)
                case let text as String: return try Self.json(["text": text])
                default:
                    return try Self.error(.gone, code: "forgotten", message: "the result of '\(id)' is no longer kept")
                }
            }
        }

        router.get("jobs/:id/preview") { _, context -> Response in
            let id = try Self.taskID(context)
            // The job's latest partial output, from the queue: while it runs, and after it finished.
            guard let png = queue.latestOutput(of: id, as: Preview.self)?.png else {
                return try Self.error(.notFound, code: "noPreview", message: "no preview of '\(id)' yet")
            }
            return Self.png(png)
        }

        // "Describe image": a cheap call in the unlimited "cpu" group.
        router.get("jobs/:id/description") { _, context -> Response in
            let id = try Self.taskID(context)
            guard let png = queue.result(of: id) as? [UInt8] else {
                return try Self.error(.notFound, code: "noImage", message: "no image of '\(id)'")
            }
            let text = try await queue.runGPUCall(group: "cpu") { _ in SimulatedGPU.describe(png) }
            return try Self.json(["description": text])
        }

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

        router.get("queue") { _, _ -> Response in
            try Self.json(QueueReport(groups: queue.groups, mostRunningBodies: gpu.mostRunningAtOnce))
        }
        return router
    }

    /// A count of open event streams.
    final class StreamCount: Sendable {
        private let value = Mutex(0)

        var count: Int { value.withLock { $0 } }

        func add(_ delta: Int) {
            value.withLock { $0 += delta }
        }
    }

    struct BodyStats: Encodable {
        var most: Int
        var spans: [SimulatedGPU.Span]
    }

    struct QueueReport: Encodable {
        var groups: [GroupSnapshot]
        var mostRunningBodies: Int
    }

    // MARK: Responses

    /// Admits the call `submit` makes for a request's checked JSON body and answers its id at once: 202
    /// {"task_id"}; 400 saying what is wrong with a bad body, with nothing registered; 503 when the queue is full
    /// or the wait too long.
    static func admit<Body: CheckedRequest>(
        _ request: Request, as type: Body.Type, _ submit: (Body.Checked) throws -> TaskID
    ) async throws -> Response {
        let body = try await request.body.collect(upTo: 64 * 1024)
        let checked: Body.Checked
        do {
            checked = try JSONDecoder().decode(Body.self, from: Data(buffer: body)).validated()
        } catch let error as BadRequest {
            return try Self.error(.badRequest, code: "badRequest", message: error.message)
        } catch {
            let message = "the body must be JSON like \(Body.example)"
            return try Self.error(.badRequest, code: "badRequest", message: message)
        }
        do {
            return try Self.json(["task_id": try submit(checked).rawValue], status: .accepted)
        } catch let error as CallQueueError {
            let status: HTTPResponse.Status =
                error.code == .queueFull || error.code == .waitTooLong ? .serviceUnavailable : .badRequest
            return try Self.json(["error": error], status: status)
        }
    }

    /// The `Last-Event-ID` an `EventSource` sends when it reconnects: the index of the last token it got.
    static func lastEventID(_ request: Request) -> Int? {
        request.headers.first { $0.name.canonicalName == "last-event-id" }.flatMap { Int($0.value) }
    }

    /// The server-sent events of one update: its tokens first (each with its index as the event's id), a
    /// note of tokens the client missed, a preview note, then the status. A preview's picture is fetched from
    /// `/jobs/:id/preview` by the page, not sent to every reader.
    static func events(of update: TaskOutputUpdate<Preview, String>) throws -> String {
        let encoder = JSONEncoder()
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
            let data = String(decoding: try encoder.encode(status), as: UTF8.self)
            text += "event: status\ndata: \(data)\n\n"
        }
        return text
    }

    static func taskID(_ context: BasicRequestContext) throws -> TaskID {
        TaskID(try context.parameters.require("id"))
    }

    /// 404 with the error's JSON for an id the queue does not know.
    static func found(_ id: TaskID, _ body: () throws -> Response) throws -> Response {
        do {
            return try body()
        } catch let error as CallQueueError where error.code == .unknownTask {
            return try Self.error(.notFound, code: "unknownTask", message: error.message)
        }
    }

    static func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
        Response(
            status: status,
            headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: try JSONEncoder().encode(value)))
        )
    }

    static func error(_ status: HTTPResponse.Status, code: String, message: String) throws -> Response {
        try json(["error": ["code": code, "message": message]], status: status)
    }

    static func png(_ bytes: [UInt8]) -> Response {
        Response(
            status: .ok,
            headers: [.contentType: "image/png", .cacheControl: "no-store"],
            body: .init(byteBuffer: ByteBuffer(bytes: bytes))
        )
    }

    static func page() throws -> Response {
        guard let url = Bundle.module.url(forResource: "index", withExtension: "html") else {
            throw HTTPError(.internalServerError, message: "the page is missing from the bundle")
        }
        let html = try Data(contentsOf: url)
        return Response(
            status: .ok,
            headers: [.contentType: "text/html; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(bytes: html))
        )
    }
}
