import CallQueue
import Vapor

func streamingRoutes(_ app: Application) throws {
    // A chat call: its body emits each token as it makes it; the whole text is its result.
    app.post("chat") { req async throws -> Response in
        let prompt = try req.content.get(String.self, at: "prompt")
        do {
            let job = try req.application.calls.submit(group: "gpu") { context in
                try await chat(prompt) { token in context.emitChunk(token) }
            }
            let response = try await Submitted(task_id: job.id.rawValue).encodeResponse(for: req)
            response.status = .accepted
            return response
        } catch let error as CallQueueError where error.code == .queueFull || error.code == .waitTooLong {
            throw Abort(.serviceUnavailable, reason: error.message)
        }
    }

    // The tokens as server-sent events, each with its index as the event's id, then the statuses: an
    // EventSource that reconnects sends the last id as Last-Event-ID and resumes right after it.
    app.get("jobs", ":id", "tokens") { req async throws -> Response in
        let id = TaskID(try req.parameters.require("id"))
        let lastEventID = req.headers.first(name: "Last-Event-ID").flatMap { Int($0) }
        let outputs: TaskOutputs<Never, String>
        do {
            outputs = try req.application.calls.outputs(of: id, chunks: String.self, after: lastEventID)
        } catch let error as CallQueueError where error.code == .unknownTask {
            throw Abort(.notFound, reason: error.message)
        }
        let body = Response.Body(asyncStream: { writer in
            let encoder = JSONEncoder()
            for await update in outputs {
                var events = ""
                for chunk in update.chunks {
                    let json = String(decoding: try encoder.encode(chunk.value), as: UTF8.self)
                    events += "id: \(chunk.index)\nevent: token\ndata: \(json)\n\n"
                }
                if let status = update.status {
                    let json = String(decoding: try encoder.encode(status), as: UTF8.self)
                    events += "event: status\ndata: \(json)\n\n"
                }
                try await writer.writeBuffer(ByteBuffer(string: events))
            }
            try await writer.write(.end)
        })
        return Response(status: .ok, headers: ["Content-Type": "text/event-stream"], body: body)
    }
}

/// The simulated text model the streaming routes call: a few words, one at a time, honouring cancellation.
func chat(_ prompt: String, emit: (String) -> Void) async throws -> String {
    var text = ""
    for word in ["You", " asked", " about", " \(prompt)"] {
        try Task.checkCancellation()
        try await Task.sleep(for: .milliseconds(50))
        text += word
        emit(word)
    }
    return text
}
