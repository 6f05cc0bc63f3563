import CallQueueTestSupport
import Foundation
import XCTest

@testable import CallQueue

/// Scenarios against the public API that once broke the layer every call crosses: a queue's lifecycle driven
/// from outside, statuses that contradicted themselves, traps and hangs on input, a grant off the injected
/// clock, and an early outcome left behind by a cancel. Each failed before its fix.
final class SchedulerDefectTests: XCTestCase {
    /// `start` and `finish` on a queue's own lifecycle are refused: a queued call keeps its place and its
    /// caller, and a running call keeps its slot until its body returns.
    func testAQueuesLifecycleRefusesStartAndFinish() async throws {
        let queue = try CallQueue(configuration: .init(groups: ["gpu": .init(limit: 1)]))
        let bodies = HolderCounter()
        let gate = Gate()
        let holder = try queue.submit(id: "task(holder)", group: "gpu") { _ in
            bodies.enter()
            await gate.wait()
            bodies.leave()
        }
        await waitForStatus(queue, "task(holder)") { $0.isRunning }
        let waiting = try queue.submit(id: "task(waiting)", group: "gpu") { _ in
            bodies.enter()
            bodies.leave()
        }
        for call in [{ try queue.lifecycle.start("task(waiting)") }, { try queue.lifecycle.start("task(holder)") }] {
            XCTAssertThrowsError(try call()) { XCTAssertEqual(($0 as? CallQueueError)?.code, .invalidArgument) }
        }
        for id: TaskID in ["task(holder)", "task(waiting)"] {
            XCTAssertThrowsError(try queue.lifecycle.finish(id, outcome: .succeeded)) {
                XCTAssertEqual(($0 as? CallQueueError)?.code, .invalidArgument)
            }
        }
        XCTAssertEqual(try queue.status(of: "task(waiting)").state.queued?.position, 0)
        XCTAssertNotNil(try queue.status(of: "task(holder)").state.running)
        gate.open()
        try await holder.value
        try await waiting.value
        XCTAssertEqual(bodies.most, 1, "never two bodies at once on a limit-1 group")
    }

    /// Under a process-wide limit, a head that waits for it counts the other groups' heads ahead within a
    /// queue size that holds them, and its reader hears its place fall when the permit goes to another group.
    func testAPlaceUnderTheProcessWideLimitIsConsistentAndTold() async throws {
        let queue = try CallQueue(
            configuration: .init(
                groups: ["a": .init(limit: 2), "b": .init(limit: 1)], processWideLimit: 1,
                positionUpdateInterval: .zero))
        let gates = (0..<2).map { _ in Gate() }
        let holder = try queue.submit(id: "task(holder)", group: "a") { _ in await gates[0].wait() }
        await waitForStatus(queue, "task(holder)") { $0.isRunning }
        let second = try queue.submit(id: "task(a2)", group: "a") { _ in await gates[1].wait() }
        let other = try queue.submit(id: "task(b1)", group: "b") { _ in }
        let queued = try XCTUnwrap(try other.status().state.queued)
        XCTAssertEqual(queued.heldBy, .processLimit)
        XCTAssertEqual(queued.position, 1, "a's head goes first")
        XCTAssertEqual(queued.queueSize, 2)

        let heard = Recorder<Int>()
        let reader = Task {
            for await status in try queue.updates(of: "task(b1)") {
                if let queued = status.state.queued { heard.append(queued.position) }
            }
        }
        await waitUntil("the reader read its place") { heard.count == 1 }
        gates[0].open()  // the permit goes to a2; b1 is next
        await waitUntil("the reader heard its place fall") { heard.elements.last == 0 }
        gates[1].open()
        try await holder.value
        try await second.value
        try await other.value
        try await reader.value
        XCTAssertEqual(heard.elements.prefix(2), [1, 0])
    }

    /// With no fraction set, a waiting reader is told every change of its queue size, arrivals included.
    func testAWaitingReaderHearsTheQueueGrow() async throws {
        let queue = try CallQueue(configuration: .init(groups: ["gpu": .init(limit: 1)], positionUpdateInterval: .zero))
        let gate = Gate()
        let holder = try queue.submit(id: "task(holder)", group: "gpu") { _ in await gate.wait() }
        await waitForStatus(queue, "task(holder)") { $0.isRunning }
        let first = try queue.submit(id: "task(first)", group: "gpu") { _ in }
        let sizes = Recorder<Int>()
        let reader = Task {
            for await status in try queue.updates(of: "task(first)") {
                if let queued = status.state.queued { sizes.append(queued.queueSize) }
            }
        }
        await waitUntil("the reader read its queue size") { sizes.count == 1 }
        let second = try queue.submit(id: "task(second)", group: "gpu") { _ in }
        await waitUntil("the reader heard the queue grow") { sizes.elements.last == 2 }
        gate.open()
        try await holder.value
        try await first.value
        try await second.value
        try await reader.value
        XCTAssertEqual(sizes.elements.prefix(2), [1, 2])
    }

    /// A history of `Int.max` entries keeps everything and never overflows.
    func testAHistoryOfIntMaxDoesNotTrap() async throws {
        let queue = try CallQueue(configuration: .init(finishedTaskHistory: .max, resultHistory: .max))
        for index in 0..<100 {
            _ = try await queue.runGPUCall(id: TaskID("task(\(index))")) { _ in index }
        }
        XCTAssertEqual(queue.result(of: "task(0)") as? Int, 0)
        XCTAssertNotNil(try queue.status(of: "task(0)").state.finished)
    }

    /// Seconds past what a `Duration` holds (or negative, or not finite) decode to a typed error, not a trap.
    func testDecodingSecondsOutOfRangeIsADecodingError() throws {
        for seconds in ["1.7e21", "-1", "1e300"] {
            let json =
                #"{"estimatedWait":\#(seconds),"eta":1,"group":"gpu","heldBy":"group","id":"task(a)","#
                + #""position":2,"queueSize":5,"state":"queued","version":7}"#
            XCTAssertThrowsError(try JSONDecoder().decode(TaskStatus.self, from: Data(json.utf8))) { error in
                XCTAssertTrue(error is DecodingError, "\(error)")
            }
        }
    }

    /// Two tasks iterating one update sequence: the second ends at once, the first goes on to the end.
    func testASecondConsumerOfOneSequenceEndsAtOnce() async throws {
        let queue = try CallQueue(configuration: .init(groups: ["gpu": .init(limit: 1)], positionUpdateInterval: .zero))
        let gate = Gate()
        let job = try queue.submit(id: "task(job)", group: "gpu") { _ in await gate.wait() }
        await waitForStatus(queue, "task(job)") { $0.isRunning }
        let updates = try queue.updates(of: "task(job)")
        let first = Task {
            var states: [String] = []
            for await status in updates { states.append(status.state.name) }
            return states
        }
        let subscription = updates.token.subscription
        await waitUntil("the first consumer waits") {
            queue.lifecycle.scheduler.inspect { _ in subscription.parked != nil }
        }
        var second = updates.makeAsyncIterator()
        let secondStatus = await second.next()
        XCTAssertNil(secondStatus, "the second consumer ends at once")
        gate.open()
        try await job.value
        let states = await first.value
        XCTAssertEqual(states, ["running", "finished"])
    }

    /// A cluster-wide group cannot be combined with a process-wide limit: the cluster grants its slots.
    func testAProcessWideLimitWithClusterGroupsIsRefused() throws {
        let cluster = InMemoryCluster(slots: 1)
        XCTAssertThrowsError(
            try CallQueue(
                configuration: .init(
                    groups: ["gpu": .init(limit: 1)], processWideLimit: 1,
                    permitSources: ["gpu": cluster.source(replica: "a")]))
        ) { XCTAssertEqual(($0 as? CallQueueError)?.code, .invalidArgument) }
    }

    /// A call granted because the head before it was cancelled starts at the injected clock's instant.
    func testAGrantAfterACancelReadsTheInjectedClock() async throws {
        let clock = ManualClock()
        let queue = try CallQueue(
            configuration: .init(groups: ["gpu": .init(limit: 4, budget: 10)], clock: clock.lifecycleClock))
        let gates = (0..<2).map { _ in Gate() }
        let holder = try queue.submit(id: "task(holder)", group: "gpu", weight: 5) { _ in await gates[0].wait() }
        await waitForStatus(queue, "task(holder)") { $0.isRunning }
        let big = try queue.submit(id: "task(big)", group: "gpu", weight: 10) { _ in }
        let small = try queue.submit(id: "task(small)", group: "gpu", weight: 5) { _ in await gates[1].wait() }
        XCTAssertEqual(try small.status().state.queued?.position, 1, "held behind the big head")
        clock.advance(by: .seconds(1_000))
        XCTAssertTrue(big.cancel())
        await waitForStatus(queue, "task(small)") { $0.isRunning }
        XCTAssertEqual(try small.status().state.running?.elapsed, .zero, "started at the manual clock's now")
        gates[1].open()
        try await small.value
        XCTAssertEqual(try small.status().state.finished?.queuedFor, .seconds(1_000))
        gates[0].open()
        try await holder.value
    }

    /// Callers cancelled while they enter their wait leave no early outcome behind.
    func testCancelsRacingTheWaitLeaveNothingBehind() async throws {
        let queue = try CallQueue(configuration: .init(groups: ["gpu": .init(limit: 1)]))
        let gate = Gate()
        let holder = try queue.submit(id: "task(holder)", group: "gpu") { _ in await gate.wait() }
        await waitForStatus(queue, "task(holder)") { $0.isRunning }
        let rounds = stressIterations(20_000, minimum: 2_000)
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<rounds {
                let call = Task { try await queue.runQueued(group: "gpu") {} }
                group.addTask {
                    call.cancel()
                    _ = await call.result
                }
            }
        }
        XCTAssertEqual(queue.lifecycle.scheduler.inspect { $0.early.count }, 0)
        XCTAssertEqual(queue.lifecycle.scheduler.inspect { $0.parkedWaiters }, 0)
        gate.open()
        try await holder.value
    }
}
