import CallQueueTestSupport
import Foundation
import XCTest

@testable import CallQueue

/// The code of the guide "Fair share and priorities", run: CI checks that every snippet of the guide stands in
/// this file, line for line.
final class FairShareGuideTests: XCTestCase {
    /// What an HTTP handler answers for a refusal: status, `Retry-After` seconds, JSON body.
    struct Refusal: Equatable {
        var status: Int
        var retryAfter: Int?
        var body: String
    }

    static func makeQueue() throws -> CallQueue {
        let fairShare = FairShare(
            maxQueuedPerKey: 3,
            maxRunningPerKey: 1,
            weights: ["tenant-pro": 4],
            weightOfKey: { key in key.value.hasPrefix("team-") ? 2 : 1 }
        )
        let queue = try CallQueue(
            configuration: .init(groups: [
                "gpu": ConcurrencyGroupConfiguration(limit: .limited(2), discipline: .fairShare(fairShare))
            ]))
        return queue
    }

    static func generate(queue: CallQueue, session: String, prompt: String) async throws -> String {
        try await CallFairness.$current.withValue(CallFairness(key: FairnessKey(session))) {
            try await queue.runGPUCall(group: "gpu") { _ in "image for \(prompt)" }
        }
    }

    static func submitPaid(queue: CallQueue, user: String) throws -> JobHandle<String> {
        let fairness = CallFairness(key: FairnessKey(user), priority: .high)
        return try queue.submit(group: "gpu", fairness: fairness) { _ in "rendered" }
    }

    static func refusal(for error: CallQueueError) throws -> Refusal? {
        switch error.code {
        case .tooManyQueued:
            // This client has enough waiting: 429, and when its next call should start.
            return Refusal(status: 429, retryAfter: error.retryAfterSeconds, body: try error.jsonText())
        case .queueFull, .waitTooLong:
            // The server is full for everyone: 503.
            return Refusal(status: 503, retryAfter: error.retryAfterSeconds, body: try error.jsonText())
        default:
            return nil
        }
    }

    func testTheGuidesCodeRuns() async throws {
        let queue = try Self.makeQueue()
        let image = try await Self.generate(queue: queue, session: "session-1", prompt: "a cat")
        XCTAssertEqual(image, "image for a cat")
        let paid = try Self.submitPaid(queue: queue, user: "tenant-pro")
        let rendered = try await paid.value
        XCTAssertEqual(rendered, "rendered")

        let gate = Gate()
        var handles: [JobHandle<Void>] = []
        for _ in 0..<4 {
            handles.append(try queue.submit(group: "gpu", fairness: .init(key: "flood")) { _ in await gate.wait() })
        }
        do {
            _ = try queue.submit(group: "gpu", fairness: .init(key: "flood")) { _ in }
            XCTFail("the fifth call of one key: one runs, three wait, the cap is three")
        } catch let error as CallQueueError {
            let refusal = try XCTUnwrap(try Self.refusal(for: error))
            XCTAssertEqual(refusal.status, 429)
            XCTAssertGreaterThanOrEqual(try XCTUnwrap(refusal.retryAfter), 1)
            XCTAssertTrue(refusal.body.contains("\"code\":\"tooManyQueued\""), refusal.body)
        }
        gate.open()
        for handle in handles { _ = await handle.response }
    }
}

extension CallQueueError {
    /// The error as the JSON body of a response.
    func jsonText() throws -> String {
        String(decoding: try JSONEncoder().encode(self), as: UTF8.self)
    }
}
