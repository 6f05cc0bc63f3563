import CallQueueTestSupport
import XCTest

@testable import CallQueue

/// Suspends until the current task is cancelled; no clock involved.
func waitForCancellation() async {
    let gate = Gate()
    await withTaskCancellationHandler {
        await gate.wait()
    } onCancel: {
        gate.open()
    }
}

/// A cancel by id cancels the call, never the task that awaits it.
final class CancelByIdTests: XCTestCase {
    /// One task makes three calls; only the first is cancelled by id, while it runs. The caller gets
    /// `CancellationError` from that call alone, is not left cancelled, and its next two calls run.
    func testCancelByIdCancelsTheCallNotItsCaller() async throws {
        let queue = try CallQueue()
        let running = Gate()
        let caller = Task { () -> [String] in
            var outcomes: [String] = []
            do {
                try await queue.runGPUCall(id: "task(first)") { _ in
                    running.open()
                    await waitForCancellation()
                    try Task.checkCancellation()
                }
                outcomes.append("first succeeded")
            } catch is CancellationError {
                outcomes.append("first cancelled")
            }
            outcomes.append(Task.isCancelled ? "caller cancelled" : "caller not cancelled")
            try await queue.runGPUCall(id: "task(second)") { _ in outcomes.append("second ran") }
            let third = try await queue.runGPUCall(id: "task(third)") { _ in "third ran" }
            outcomes.append(third)
            return outcomes
        }
        await running.wait()
        XCTAssertTrue(try queue.cancel("task(first)"))
        let outcomes = try await caller.value
        XCTAssertEqual(outcomes, ["first cancelled", "caller not cancelled", "second ran", "third ran"])
        XCTAssertEqual(try queue.status(of: "task(first)").state.finished?.outcome, .cancelled)
    }

    /// Cancelled by id while it waits: the call leaves the line, its caller is not cancelled.
    func testCancelByIdWhileQueuedLeavesTheCallerUsable() async throws {
        let queue = try CallQueue()
        let gate = Gate()
        let holder = try queue.submit(id: "task(holder)") { _ in await gate.wait() }
        let caller = Task { () -> (threwCancellation: Bool, callerCancelled: Bool) in
            var threwCancellation = false
            do {
                try await queue.runGPUCall(id: "task(queued)") { _ in }
            } catch is CancellationError {
                threwCancellation = true
            }
            try await queue.runGPUCall(id: "task(later)") { _ in }
            return (threwCancellation, Task.isCancelled)
        }
        await waitForStatus(queue, "task(queued)") { $0.isQueued }
        XCTAssertTrue(try queue.cancel("task(queued)"))
        await waitForStatus(queue, "task(queued)") { $0.finished != nil }
        gate.open()
        try await holder.value
        let result = try await caller.value
        XCTAssertTrue(result.threwCancellation)
        XCTAssertFalse(result.callerCancelled)
    }

    /// A body whose cancellation handler reads its flags does not deadlock: handlers run outside every lock.
    func testCancellationHandlerMayReadFlags() async throws {
        let queue = try CallQueue()
        let running = Gate()
        let seen = Recorder<ControlFlags>()
        let job = try queue.submit(id: "task(handler)") { context in
            await withTaskCancellationHandler {
                running.open()
                await waitForCancellation()
            } onCancel: {
                seen.append(context.flags)
            }
        }
        await running.wait()
        try queue.cancel("task(handler)")
        _ = try? await job.value
        XCTAssertEqual(seen.elements, [.interrupt])
    }

    /// Cancel racing the grant, many times: every job ends exactly once, the slot is never lost, and no
    /// caller is left cancelled.
    func testCancelRacingTheGrantNeverLosesTheSlot() async throws {
        let queue = try CallQueue()
        let iterations = stressIterations(2_000, minimum: 200)
        let outcomes = HolderCounter()
        for index in 0..<iterations {
            let id = TaskID("task(race-\(index))")
            let job = try queue.submit(id: id) { _ in }
            _ = try? queue.cancel(id)
            _ = try? await job.value
            outcomes.enter()
        }
        XCTAssertEqual(outcomes.current, iterations)
        try await queue.runGPUCall { _ in }  // the slot is free
        XCTAssertEqual(queue.groups.first?.runningCount, 0)
        XCTAssertEqual(queue.groups.first?.waiting, 0)
    }

    /// The awaiting task going away does not cancel a submitted job; cancel by handle does.
    func testSubmittedJobOutlivesItsAwaiterAndCancelsByHandle() async throws {
        let queue = try CallQueue()
        let gate = Gate()
        let job = try queue.submit(id: "task(kept)") { _ in await gate.wait() }
        let awaiter = Task { try await job.value }
        awaiter.cancel()
        await waitForStatus(queue, "task(kept)") { $0.isRunning }
        gate.open()
        try await job.value
        XCTAssertEqual(try queue.status(of: "task(kept)").state.finished?.outcome, .succeeded)

        let started = Gate()
        let blocked = try queue.submit(id: "task(stopped)") { _ in
            started.open()
            await waitForCancellation()
            try Task.checkCancellation()
        }
        await started.wait()
        XCTAssertTrue(blocked.cancel())
        await assertThrowsCancellation { try await blocked.value }
        XCTAssertEqual(try queue.status(of: "task(stopped)").state.finished?.outcome, .cancelled)
    }
}
