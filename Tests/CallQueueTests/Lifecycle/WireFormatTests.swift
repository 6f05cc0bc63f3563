import CallQueueTestSupport
import Foundation
import XCTest

@testable import CallQueue

/// The JSON a browser reads, bad numbers that must not crash, histories, and the standalone lifecycle.
final class WireFormatTests: XCTestCase {
    private func json(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    func testTaskStatusIsFlatWithSecondsAndRoundTrips() throws {
        let queued = TaskStatus(
            id: "task(a)", group: "gpu",
            state: .queued(
                .init(position: 2, queueSize: 5, heldBy: .group, estimatedWait: .seconds(12), eta: .seconds(18.5))),
            version: 7)
        XCTAssertEqual(
            try json(queued),
            #"{"estimatedWait":12,"eta":18.5,"group":"gpu","heldBy":"group","id":"task(a)","position":2,"#
                + #""queueSize":5,"state":"queued","version":7}"#)
        let running = TaskStatus(
            id: "task(a)", group: "gpu",
            state: .running(.init(slot: 1, progress: 0.5, step: "10/20", elapsed: .seconds(2.5), eta: .seconds(2.5))),
            version: 9)
        XCTAssertEqual(
            try json(running),
            #"{"elapsed":2.5,"eta":2.5,"group":"gpu","id":"task(a)","progress":0.5,"slot":1,"state":"running","#
                + #""step":"10\/20","version":9}"#)
        let failed = TaskStatus(
            id: "task(a)", group: "gpu",
            state: .finished(
                .init(outcome: .failed(message: "E: boom"), queuedFor: .seconds(1), ranFor: .seconds(3), started: true)),
            version: 11)
        XCTAssertEqual(
            try json(failed),
            #"{"group":"gpu","id":"task(a)","message":"E: boom","outcome":"failed","queuedFor":1,"ranFor":3,"#
                + #""started":true,"state":"finished","version":11}"#)
        for status in [queued, running, failed] {
            XCTAssertEqual(try JSONDecoder().decode(TaskStatus.self, from: JSONEncoder().encode(status)), status)
        }
    }

    func testErrorsAndResponsesCarryTheCode() throws {
        let error = CallQueueError(.queueFull, "group 'gpu' is full", group: "gpu", queueSize: 3, maxQueueSize: 3)
        XCTAssertEqual(
            try json(error),
            #"{"code":"queueFull","group":"gpu","maxQueueSize":3,"message":"group 'gpu' is full","queueSize":3}"#)
        XCTAssertEqual(try JSONDecoder().decode(CallQueueError.self, from: JSONEncoder().encode(error)), error)
        XCTAssertEqual(CallQueue.errorText(error), "CallQueueError: group 'gpu' is full", "the type is named once")

        let response = CallResponse<String>(
            .init(result: .failure(error), taskID: "task(r)", stats: PerfStats(queued: .seconds(0.25), running: .zero)),
            fallback: .value("none"))
        XCTAssertEqual(response.failure?.code, "queueFull")
        XCTAssertEqual(
            try json(response),
            #"{"failure":{"code":"queueFull","message":"group 'gpu' is full","type":"CallQueueError"},"#
                + #""outputs":"none","stats":{"queued":0.25,"running":0},"taskID":"task(r)","wasCancelled":false}"#)
    }

    func testHTMLIsEscapedByUnicodeScalar() {
        // "<" followed by a combining accent is one Character, but its "<" must still be escaped.
        XCTAssertEqual(htmlEscaped("<\u{301}script>&'\""), "&lt;\u{301}script&gt;&amp;&#x27;&quot;")
    }

    /// A tiny progress does not trap in the ETA; it is clamped to the documented limit.
    func testTinyProgressIsClampedNotATrap() async throws {
        let clock = ManualClock()
        let queue = try CallQueue(configuration: .init(clock: clock.lifecycleClock))
        let reported = Gate()
        let proceed = Gate()
        let job = try queue.submit(id: "task(slow)") { context in
            context.report(fraction: 1e-30)
            reported.open()
            await proceed.wait()
            context.report(fraction: .infinity)
            context.report(fraction: -.nan)
        }
        await reported.wait()
        clock.advance(by: .seconds(1))
        XCTAssertEqual(try queue.status(of: "task(slow)").state.running?.eta, Duration.etaLimit)
        proceed.open()
        try await job.value
    }

    func testHistoryKeepsTheNewestEntryOfAReusedIdAndEvictsTheOldest() {
        var history = TaskHistory<Int>(capacity: 2)
        let now = ContinuousClock.now
        history.record(1, for: "a", at: now)
        history.record(2, for: "b", at: now)
        history.record(3, for: "a", at: now)  // reused: newest now
        XCTAssertEqual(history["a", now], 3)
        XCTAssertEqual(history["b", now], 2)
        history.record(4, for: "c", at: now)  // evicts b, the oldest
        XCTAssertNil(history["b", now])
        XCTAssertEqual(history["a", now], 3)
        XCTAssertEqual(history["c", now], 4)
        for value in 0..<10_000 { history.record(value, for: "a", at: now) }
        XCTAssertEqual(history.count, 2)
        XCTAssertEqual(history["c", now], 4, "re-recording one id never evicts the other")
    }

    /// A lifecycle used by itself tracks work that runs elsewhere.
    func testStandaloneLifecycleTracksWorkDoneElsewhere() async throws {
        let lifecycle = try TaskLifecycle(configuration: .init(positionUpdateInterval: .zero))
        let cancelled = Recorder<String>()
        let first = try lifecycle.register("task(one)", group: "farm")
        let second = try lifecycle.register("task(two)", group: "farm") { cancelled.append("two") }
        XCTAssertEqual(try lifecycle.status(of: second).state.queued?.position, 1)
        try lifecycle.start(first, slot: 3)
        XCTAssertEqual(try lifecycle.status(of: first).state.running?.slot, 3)
        XCTAssertEqual(try lifecycle.status(of: second).state.queued?.position, 0)
        lifecycle.report(first, fraction: 0.5, step: "frame 12")
        XCTAssertEqual(try lifecycle.status(of: first).state.running?.step, "frame 12")
        XCTAssertTrue(try lifecycle.cancel(second))
        XCTAssertEqual(cancelled.elements, ["two"])
        try lifecycle.finish(first, outcome: .succeeded, result: "frames")
        try lifecycle.finish(second, outcome: .cancelled)
        XCTAssertEqual(lifecycle.result(of: first) as? String, "frames")
        XCTAssertEqual(try lifecycle.status(of: second).state.finished?.outcome, .cancelled)
        XCTAssertTrue(lifecycle.liveTasks.isEmpty)
        XCTAssertEqual(lifecycle.scheduler.inspect { $0.groups["farm"]?.liveTasks }, 0)

        let queue = try CallQueue()
        XCTAssertThrowsError(try queue.lifecycle.register()) { error in
            XCTAssertEqual((error as? CallQueueError)?.code, .invalidArgument)
        }
    }
}
