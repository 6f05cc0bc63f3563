import CallQueueTestSupport
import Foundation
import XCTest

@testable import CallQueue

/// The code of the guide "Streaming partial outputs", run: CI checks that every snippet of the guide stands in
/// this file, line for line.
final class StreamingGuideTests: XCTestCase {
    /// A stand-in for a text model: the words of its answer, one at a time.
    struct Model: Sendable {
        func tokens(for prompt: String) -> [String] {
            ["You", " asked", ":", " \(prompt)"]
        }
    }

    /// A preview image, counted by the bytes it holds.
    struct Preview: PartialOutput, Codable {
        var step: Int
        var png: [UInt8]
        var outputByteCount: Int { png.count + 8 }
    }

    static func makeQueue() throws -> CallQueue {
        let queue = try CallQueue(
            configuration: .init(
                groups: ["gpu": .init(limit: .one)],
                partialOutputs: PartialOutputLimits(maxBufferedChunks: 4_096, maxBufferedBytes: 256 * 1024)
            ))
        return queue
    }

    static func submitChat(queue: CallQueue, model: Model, prompt: String) throws -> JobHandle<String> {
        let handle = try queue.submit(group: "gpu") { context in
            var text = ""
            for token in model.tokens(for: prompt) {
                try Task.checkCancellation()
                text += token
                context.emitChunk(token)
            }
            return text
        }
        return handle
    }

    static func render(queue: CallQueue, steps: Int) throws -> JobHandle<[UInt8]> {
        try queue.submit(group: "gpu") { context in
            var image: [UInt8] = []
            for step in 1...steps {
                image = [UInt8](repeating: UInt8(step), count: 16)  // one denoising step
                context.emitLatest(Preview(step: step, png: image))
                context.report(completed: step, of: steps)
            }
            return image
        }
    }

    /// The lines of server-sent events a handler writes for a task, resuming after `lastEventID`.
    static func serverSentEvents(queue: CallQueue, id: TaskID, lastEventID: Int?) async throws -> [String] {
        var lines: [String] = []
        let encoder = JSONEncoder()
        for await update in try queue.outputs(of: id, chunks: String.self, after: lastEventID) {
            if update.missedChunks > 0 {
                lines.append("event: missed\ndata: \(update.missedChunks)\n\n")
            }
            for chunk in update.chunks {
                let data = String(decoding: try encoder.encode(chunk.value), as: UTF8.self)
                lines.append("id: \(chunk.index)\nevent: token\ndata: \(data)\n\n")
            }
            if let status = update.status {
                let data = String(decoding: try encoder.encode(status), as: UTF8.self)
                lines.append("event: status\ndata: \(data)\n\n")
            }
        }
        return lines
    }

    static func newestPreview(queue: CallQueue, id: TaskID) -> [UInt8]? {
        queue.latestOutput(of: id, as: Preview.self)?.png
    }

    static func makeCaptioner(queue: CallQueue) -> Batcher<String, String> {
        queue.makeBatcher(group: "gpu", maxBatchSize: 8) { (prompts: [String], context: BatchContext) in
            var captions = [String](repeating: "", count: prompts.count)
            for word in ["a", " photo", " of"] {
                for index in prompts.indices {
                    captions[index] += word
                    context.emitChunk(word, to: index)
                }
            }
            return captions
        }
    }

    func testTheGuidesCodeRuns() async throws {
        let queue = try Self.makeQueue()
        // A chat call's tokens, read while it waits, then runs.
        let holder = try queue.submit(group: "gpu") { _ in try await Task.sleep(for: .seconds(3600)) }
        await waitForStatus(queue, holder.id) { $0.isRunning }
        let chat = try Self.submitChat(queue: queue, model: Model(), prompt: "foxes")
        let chatID = chat.id
        async let reading = Self.serverSentEvents(queue: queue, id: chatID, lastEventID: nil)
        await waitUntil("the reader follows the chat") {
            queue.lifecycle.scheduler.inspect { $0.tasks[chatID]?.subscriptions.isEmpty == false }
        }
        try queue.cancel(holder.id)
        let text = try await chat.value
        XCTAssertEqual(text, "You asked: foxes")
        let lines = try await reading
        let tokens = lines.filter { $0.contains("event: token") }
        XCTAssertEqual(tokens.count, 4)
        XCTAssertTrue(tokens[0].hasPrefix("id: 0\n"), tokens[0])
        XCTAssertTrue(tokens[3].contains(#"data: " foxes""#), tokens[3])
        XCTAssertTrue(lines.last?.contains(#""outcome":"succeeded""#) ?? false)

        // A preview is kept after the call finished, with its history.
        let render = try Self.render(queue: queue, steps: 5)
        let image = try await render.value
        XCTAssertEqual(Self.newestPreview(queue: queue, id: render.id), image)

        // A batch emits to each member.
        let captioner = Self.makeCaptioner(queue: queue)
        let caption = try await captioner("a cat")
        XCTAssertEqual(caption, "a photo of")
    }
}
