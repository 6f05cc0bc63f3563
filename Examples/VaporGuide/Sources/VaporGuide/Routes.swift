import CallQueue
import Vapor

struct CallQueueKey: StorageKey { typealias Value = CallQueue }

extension Application {
    var calls: CallQueue { storage[CallQueueKey.self]! }
}

struct Submitted: Content { var task_id: String }

func routes(_ app: Application) throws {
    // Admit the job and answer its id at once: 202 {"task_id": …}, or 503 when the queue is full.
    app.post("jobs") { req async throws -> Response in
        let prompt = try req.content.get(String.self, at: "prompt")
        do {
            let job = try req.application.calls.submit(group: "gpu") { context in
                try await generate(prompt, onGPU: context.slot) { context.report(completed: $0, of: $1) }
            }
            let response = try await Submitted(task_id: job.id.rawValue).encodeResponse(for: req)
            response.status = .accepted
            return response
        } catch let error as CallQueueError where error.code == .queueFull || error.code == .waitTooLong {
            throw Abort(.serviceUnavailable, reason: error.message)
        }
    }

    // Polling: the task's status as JSON; 404 for an unknown id.
    app.get("jobs", ":id") { req async throws -> Response in
        let id = TaskID(try req.parameters.require("id"))
        do {
            let status = try req.application.calls.status(of: id)
            return try await status.encodeResponse(for: req)
        } catch let error as CallQueueError where error.code == .unknownTask {
            throw Abort(.notFound, reason: error.message)
        }
    }

    // Push: server-sent events from the update stream; it ends after the finished status. A client that
    // disconnects does not cancel the job.
    app.get("jobs", ":id", "events") { req async throws -> Response in
        let updates = try req.application.calls.updates(of: TaskID(try req.parameters.require("id")))
        let body = Response.Body(asyncStream: { writer in
            let encoder = JSONEncoder()
            for await status in updates {
                let json = String(decoding: try encoder.encode(status), as: UTF8.self)
                try await writer.writeBuffer(ByteBuffer(string: "data: \(json)\n\n"))
            }
            try await writer.write(.end)
        })
        return Response(status: .ok, headers: ["Content-Type": "text/event-stream"], body: body)
    }

    app.delete("jobs", ":id") { req async throws -> HTTPStatus in
        do {
            try req.application.calls.cancel(TaskID(try req.parameters.require("id")))
        } catch let error as CallQueueError where error.code == .unknownTask {
            throw Abort(.notFound, reason: error.message)
        }
        return .accepted
    }
}

/// The simulated model the guide's routes call: reports each step, honours cancellation between steps.
func generate(_ prompt: String, onGPU slot: Int, progress: (Int, Int) -> Void) async throws -> String {
    for step in 1...4 {
        try Task.checkCancellation()
        progress(step, 4)
    }
    return "image for \(prompt) from GPU \(slot)"
}

extension TaskStatus: @retroactive Content {}
