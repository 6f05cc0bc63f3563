import CallQueueTestSupport
import XCTest

@testable import CallQueue

/// A graceful shutdown: stop admitting, fail waiters with `.closed`, let running calls finish within the grace
/// period on the injected clock, cancel what is left, and end with none of the queue's tasks alive.
final class ShutdownTests: XCTestCase {
    /// Running calls finish within the grace period; waiters and newcomers fail with `.closed` at once.
    func testRunningCallsFinishAndWaitersFail() async throws {
        let clock = ManualClock()
        let queue = try CallQueue(
            configuration: .init(groups: ["gpu": .init(limit: 1)], clock: clock.lifecycleClock))
        let gate = Gate()
        let running = try queue.submit(id: "task(running)", group: "gpu") { _ in
            await gate.wait()
            return "done"
        }
        await waitForStatus(queue, "task(running)") { $0.isRunning }
        let waiting = try queue.submit(id: "task(waiting)", group: "gpu") { _ in "never" }
        let ended = Recorder<Bool>()
        let shutdown = Task {
            await queue.shutdown(gracePeriod: .seconds(30))
            ended.append(true)
        }
        await assertThrowsCallQueueError(.closed) { _ = try await waiting.value }
        await assertThrowsCallQueueError(.closed) { _ = try queue.submit(group: "gpu") { _ in } }
        await assertThrowsCallQueueError(.closed) { try await queue.runGPUCall(group: "gpu") { _ in } }
        await waitUntil("the grace period runs") { clock.sleeperCount == 1 }
        XCTAssertEqual(ended.count, 0, "the shutdown waits for the running call")
        gate.open()
        let output = try await running.value
        XCTAssertEqual(output, "done")
        await shutdown.value
        XCTAssertEqual(ended.count, 1)
        XCTAssertEqual(queue.scheduler.background.count, 0, "none of the queue's tasks is alive")
        XCTAssertEqual(try queue.status(of: "task(running)").state.finished?.outcome, .succeeded)
    }

    /// When the grace period ends (the manual clock moves), running calls are cancelled, and the shutdown
    /// returns once their bodies have.
    func testTheGracePeriodEndsWithACancel() async throws {
        let clock = ManualClock()
        let queue = try CallQueue(
            configuration: .init(
                groups: ["gpu": .init(limit: 2)], clock: clock.lifecycleClock, shutdownGracePeriod: .seconds(5)))
        // One gate per body: a shared one let the first cancel release the second body before its own cancel.
        let cancelled = (0..<2).map { _ in Gate() }
        let bodies = HolderCounter()
        let handles = try (0..<2).map { index in
            try queue.submit(id: TaskID("task(\(index))"), group: "gpu") { _ in
                bodies.enter()
                defer { bodies.leave() }
                await withTaskCancellationHandler {
                    await cancelled[index].wait()
                } onCancel: {
                    cancelled[index].open()
                }
                try Task.checkCancellation()
            }
        }
        await waitUntil("both run") { bodies.current == 2 }
        let shutdown = Task { await queue.shutdown() }
        await waitUntil("the grace period runs") { clock.sleeperCount == 1 }
        clock.advance(by: .seconds(4))
        XCTAssertEqual(bodies.current, 2, "still within the grace period")
        clock.advance(by: .seconds(1))
        await shutdown.value
        XCTAssertEqual(bodies.current, 0, "every body returned before the shutdown did")
        for handle in handles {
            await assertThrowsCancellation { try await handle.value }
        }
        XCTAssertEqual(try queue.status(of: "task(0)").state.finished?.outcome, .cancelled)
    }

    /// `run()` returns after `close()` has shut the queue down; a position flush still sleeping is ended, not
    /// waited out.
    func testRunEndsWithAClose() async throws {
        let queue = try CallQueue(
            configuration: .init(groups: ["gpu": .init(limit: 1)], positionUpdateInterval: .seconds(3600)))
        let gate = Gate()
        let job = try queue.submit(id: "task(job)", group: "gpu") { _ in await gate.wait() }
        await waitForStatus(queue, "task(job)") { $0.isRunning }
        let waiter = try queue.submit(id: "task(waiter)", group: "gpu") { _ in }
        let reader = Task { for await _ in try queue.updates(of: "task(waiter)") {} }
        await waitUntil("the reader is parked") {
            queue.lifecycle.scheduler.inspect { $0.groups["gpu"]?.parkedReaders.count } == 1
        }
        let run = Task { await queue.run() }
        queue.close()
        await assertThrowsCallQueueError(.closed) { try await waiter.value }
        try await reader.value
        XCTAssertEqual(queue.scheduler.background.count, 2, "the job, and a flush due in an hour")
        gate.open()
        await run.value
        try await job.value
        XCTAssertEqual(queue.scheduler.background.count, 0)
    }

    /// Cancelling `run()` cancels running calls at once and returns without waiting for their bodies.
    func testCancellingRunCancelsRunningCalls() async throws {
        let queue = try CallQueue(configuration: .init(groups: ["gpu": .init(limit: 1)]))
        let bodyStarted = Gate()
        let sawCancel = Gate()
        let finish = Gate()
        let job = try queue.submit(id: "task(job)", group: "gpu") { _ in
            bodyStarted.open()
            await withTaskCancellationHandler {
                await finish.wait()
            } onCancel: {
                sawCancel.open()
            }
        }
        // The body itself, not the status: a job granted its slot but cancelled before its body began never
        // runs the body, so its cancellation handler would never be seen.
        await bodyStarted.wait()
        let run = Task { await queue.run() }
        run.cancel()
        await run.value
        await sawCancel.wait()
        finish.open()
        _ = await job.response
        await assertThrowsCallQueueError(.closed) { try await queue.runGPUCall { _ in } }
    }

    /// `run()` cancelled at any moment, racing its own start, returns: a cancel never slips between the
    /// check and the wait (a fails-by-giving-up bound, not a timing).
    func testRunCancelledAtAnyMomentReturns() async throws {
        let rounds = stressIterations(5_000, minimum: 500)
        let returned = HolderCounter()
        var runs: [Task<Void, Never>] = []
        for round in 0..<rounds {
            let queue = try CallQueue()
            let run = Task {
                await queue.run()
                returned.enter()
            }
            // Cancelled from another task after a few yields, so that the cancel lands anywhere in run()'s
            // start, its wait included.
            Task {
                for _ in 0..<(round % 4) { await Task.yield() }
                run.cancel()
            }
            runs.append(run)
        }
        await waitUntil("every cancelled run returns") { returned.current == rounds }
        for run in runs { await run.value }
    }

    /// A negative grace period in the configuration is refused.
    func testANegativeGracePeriodIsRefused() {
        XCTAssertThrowsError(try CallQueue(configuration: .init(shutdownGracePeriod: .seconds(-1)))) {
            XCTAssertEqual(($0 as? CallQueueError)?.code, .invalidArgument)
        }
    }
}
