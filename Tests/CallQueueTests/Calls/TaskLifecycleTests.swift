import CallQueueTestSupport
import XCTest

@testable import CallQueue

final class TaskLifecycleTests: XCTestCase {
    func testGeneratedIdsHaveTheA1111FormAndFirstArgumentRule() {
        let id = TaskID.generate()
        XCTAssertTrue(id.rawValue.hasPrefix("task(") && id.rawValue.hasSuffix(")"))
        XCTAssertEqual(id.rawValue.count, 21)
        XCTAssertNotEqual(TaskID.generate(), TaskID.generate())
        XCTAssertEqual(TaskID.fromFirstArgument("task(abc)"), "task(abc)")
        XCTAssertNil(TaskID.fromFirstArgument("task(abc"))
        XCTAssertNil(TaskID.fromFirstArgument("xtask(abc)"))
        XCTAssertNil(TaskID.fromFirstArgument(Substring("task(abc)")), "only a String counts, as in A1111")
        XCTAssertNil(TaskID.fromFirstArgument(42))
    }

    func testDuplicateLiveIdIsRejectedAndUnknownIdIsReported() async throws {
        let queue = try CallQueue()
        let gate = Gate()
        let first = Task { try await queue.runGPUCall(id: "task(same)") { _ in await gate.wait() } }
        await waitForStatus(queue, "task(same)") { $0.isRunning }
        await assertThrowsCallQueueError(.duplicateTask) { try await queue.runGPUCall(id: "task(same)") { _ in } }
        XCTAssertThrowsError(try queue.status(of: "task(never)")) {
            XCTAssertEqual(($0 as? CallQueueError)?.code, .unknownTask)
        }
        XCTAssertThrowsError(try queue.cancel("task(never)"))
        XCTAssertThrowsError(try queue.updates(of: "task(never)"))
        gate.open()
        try await first.value
        // Finished: the id may be used again.
        try await queue.runGPUCall(id: "task(same)") { _ in }
    }

    /// queued (position, size, ETA from the prior) -> running (slot, progress, ETA) -> finished, with the
    /// time queued and the time running kept apart.
    func testStatesFromQueuedToFinished() async throws {
        let clock = ManualClock()
        let queue = try CallQueue(
            configuration: .init(initialRunTimeEstimate: .seconds(8), clock: clock.lifecycleClock))
        let release = Gate()
        let progressed = Gate()
        let finish = Gate()
        let first = Task {
            try await queue.runGPUCall(id: "task(first)") { _ in await release.wait() }
        }
        await waitForStatus(queue, "task(first)") { $0.isRunning }
        let second = Task {
            try await queue.runGPUCall(id: "task(second)") { context in
                context.report(completed: 3, of: 4, step: "denoising")
                progressed.open()
                await finish.wait()
                return "image"
            }
        }
        await waitForStatus(queue, "task(second)") { $0.queued?.position == 0 }
        let queued = try XCTUnwrap(try queue.status(of: "task(second)").state.queued)
        XCTAssertEqual(queued.queueSize, 1)
        XCTAssertEqual(queued.heldBy, .group)
        // One call ahead (run 2 s of its 8 s expected) then its own 8 s: 6 s wait, 14 s ETA.
        clock.advance(by: .seconds(2))
        let later = try XCTUnwrap(try queue.status(of: "task(second)").state.queued)
        XCTAssertEqual(later.estimatedWait, .seconds(6))
        XCTAssertEqual(later.eta, .seconds(14))

        release.open()
        try await first.value
        await progressed.wait()
        clock.advance(by: .seconds(3))
        let running = try XCTUnwrap(try queue.status(of: "task(second)").state.running)
        XCTAssertEqual(running.slot, 0)
        XCTAssertEqual(running.progress, 0.75)
        XCTAssertEqual(running.step, "denoising")
        XCTAssertEqual(running.elapsed, .seconds(3))
        XCTAssertEqual(running.eta, .seconds(1), "3 s for 75%: 1 s to go")

        finish.open()
        let result = try await second.value
        XCTAssertEqual(result, "image")
        let finished = try XCTUnwrap(try queue.status(of: "task(second)").state.finished)
        XCTAssertEqual(finished.outcome, .succeeded)
        XCTAssertEqual(finished.queuedFor, .seconds(2))
        XCTAssertEqual(finished.ranFor, .seconds(3))
        XCTAssertEqual(queue.result(of: "task(second)") as? String, "image")
    }

    func testFailedAndCancelledOutcomes() async throws {
        struct Broken: Error, CustomStringConvertible {
            var description: String { "the model fell over" }
        }
        let queue = try CallQueue()
        await assertThrows(Broken.self) { try await queue.runGPUCall(id: "task(fails)") { _ in throw Broken() } }
        XCTAssertEqual(
            try queue.status(of: "task(fails)").state.finished?.outcome,
            .failed(message: "Broken: the model fell over")
        )
        let cancelled = Task {
            try await queue.runGPUCall(id: "task(cancelled)") { _ in
                await waitUntil { Task.isCancelled }
                try Task.checkCancellation()
            }
        }
        await waitForStatus(queue, "task(cancelled)") { $0.isRunning }
        XCTAssertTrue(try queue.cancel("task(cancelled)"))
        await assertThrowsCancellation { try await cancelled.value }
        XCTAssertEqual(try queue.status(of: "task(cancelled)").state.finished?.outcome, .cancelled)
        XCTAssertFalse(try queue.cancel("task(cancelled)"), "already finished")
    }

    /// A job whose caller is already cancelled does not start, even with its slot free.
    func testCancelledCallerDoesNotStartAJob() async throws {
        let queue = try CallQueue()
        let gate = Gate()
        let call = Task {
            await gate.wait()
            try await queue.runGPUCall(id: "task(gone)") { _ in XCTFail("the body must not run") }
        }
        call.cancel()
        gate.open()
        await assertThrowsCancellation { try await call.value }
        XCTAssertEqual(try queue.status(of: "task(gone)").state.finished?.outcome, .cancelled)
        XCTAssertEqual(try queue.status(of: "task(gone)").state.finished?.ranFor, .zero)
    }

    /// Cancel by id while queued: the call throws at once and leaves the queue; the others move up.
    func testCancelByIdWhileQueued() async throws {
        let queue = try CallQueue()
        let gate = Gate()
        let holder = Task { try await queue.runGPUCall(id: "task(holder)") { _ in await gate.wait() } }
        await waitForStatus(queue, "task(holder)") { $0.isRunning }
        let doomed = Task { try await queue.runGPUCall(id: "task(doomed)") { _ in XCTFail("must not run") } }
        await waitForStatus(queue, "task(doomed)") { $0.queued?.position == 0 }
        let after = Task { try await queue.runGPUCall(id: "task(after)") { _ in } }
        await waitForStatus(queue, "task(after)") { $0.queued?.position == 1 }
        try queue.cancel("task(doomed)")
        await assertThrowsCancellation { try await doomed.value }
        await waitForStatus(queue, "task(after)") { $0.queued?.position == 0 }
        gate.open()
        try await holder.value
        try await after.value
    }

    /// A cancel that arrives between admission and the task attaching itself is not lost.
    func testCancelRacingStartIsNeverLost() async throws {
        let queue = try CallQueue()
        for index in 0..<stressIterations(2_000, minimum: 200) {
            let id = TaskID("task(race\(index))")
            let call = Task { try await queue.runGPUCall(id: id) { _ in try await Task.sleep(for: .seconds(600)) } }
            await waitUntil { (try? queue.status(of: id)) != nil }
            try queue.cancel(id)
            await assertThrowsCancellation { try await call.value }
        }
        XCTAssertTrue(queue.liveTasks.isEmpty)
    }

    func testFlagsReachTheBodyAndRunCallResetsThem() async throws {
        let queue = try CallQueue()
        let flagged = Gate()
        let checked = Gate()
        let seen = Recorder<ControlFlags>()
        let job = Task {
            try await queue.runGPUCall(id: "task(job)") { context in
                await flagged.wait()
                seen.append(context.flags)
                try await queue.runCall(id: "task(job)") {}
                seen.append(context.flags)
                checked.open()
            }
        }
        await waitForStatus(queue, "task(job)") { $0.isRunning }
        try queue.request([.skip, .stopAfterCurrent], for: "task(job)")
        flagged.open()
        await checked.wait()
        try await job.value
        XCTAssertEqual(seen.elements, [[.skip, .stopAfterCurrent], []])
    }

    func testHistoryKeepsTheLastFinishedTasksAndResults() async throws {
        let queue = try CallQueue(configuration: .init(finishedTaskHistory: 3, resultHistory: 1))
        for index in 0..<5 {
            _ = try await queue.runGPUCall(id: TaskID("task(\(index))")) { _ in index }
        }
        for index in 0..<2 {
            XCTAssertThrowsError(try queue.status(of: TaskID("task(\(index))")), "forgotten")
        }
        for index in 2..<5 {
            XCTAssertEqual(try queue.status(of: TaskID("task(\(index))")).state.finished?.outcome, .succeeded)
        }
        XCTAssertEqual(queue.result(of: "task(4)") as? Int, 4)
        XCTAssertNil(queue.result(of: "task(3)"))
    }

    func testDefaultHistorySizesAreA1111s() throws {
        let configuration = CallQueue.Configuration()
        XCTAssertEqual(configuration.finishedTaskHistory, 16)
        XCTAssertEqual(configuration.resultHistory, 2)
        XCTAssertEqual(configuration.defaultLimit, .one)
    }

    func testEstimatorUsesThePriorThenAMedianThatForgetsOutliers() {
        var estimator = RunTimeEstimator(prior: .seconds(5), window: 4)
        XCTAssertEqual(estimator.estimate, .seconds(5))
        for seconds in [2, 2, 2] { estimator.record(.seconds(seconds)) }
        estimator.record(.seconds(600))
        XCTAssertEqual(estimator.estimate, .seconds(2), "one outlier does not move the median")
        for _ in 0..<4 { estimator.record(.seconds(3)) }
        XCTAssertEqual(estimator.estimate, .seconds(3), "and is forgotten after the window")
    }

    /// The estimator's median, kept without sorting, against the median of the last runs recomputed from
    /// scratch, over seeded random runs with many repeats.
    func testEstimatorMatchesAMedianRecomputedFromScratch() {
        for (seed, window) in [(1, 1), (2, 4), (3, 5), (4, 16)] {
            var random = SeededRandom(seed: UInt64(seed))
            var estimator = RunTimeEstimator(prior: .seconds(7), window: window)
            var runs: [Duration] = []
            for step in 0..<2_000 {
                let run = Duration.milliseconds(Int.random(in: 0...20, using: &random))
                estimator.record(run)
                runs.append(run)
                let last = runs.suffix(window).sorted()
                let middle = last.count / 2
                let median = last.count % 2 == 1 ? last[middle] : (last[middle - 1] + last[middle]) / 2
                XCTAssertEqual(estimator.estimate, median, "seed \(seed), step \(step)")
            }
        }
    }

    /// 10,000 queued tasks: every position is right and status queries stay cheap (logarithmic each).
    func testPositionsAndETAsAtDepth() async throws {
        let depth = stressIterations(10_000, minimum: 2_000)
        let clock = ManualClock()
        let queue = try CallQueue(
            configuration: .init(initialRunTimeEstimate: .seconds(2), clock: clock.lifecycleClock))
        let gate = Gate()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await queue.runGPUCall(id: "task(head)") { _ in await gate.wait() } }
            await waitForStatus(queue, "task(head)") { $0.isRunning }
            for index in 0..<depth {
                group.addTask { try await queue.runGPUCall(id: TaskID("task(\(index))")) { _ in } }
            }
            await waitUntil { queue.liveTasks.count == depth + 1 }
            // Positions follow the order in which the tasks reached the queue; together they are 0..<depth.
            var positions: [Int] = []
            for index in 0..<depth {
                let queued = try XCTUnwrap(try queue.status(of: TaskID("task(\(index))")).state.queued)
                XCTAssertEqual(queued.queueSize, depth)
                // The head has run 0 s of its 2 s estimate (the clock stands still): 2 s until it frees its
                // slot, then 2 s per task ahead.
                XCTAssertEqual(queued.estimatedWait, .seconds(2) * (1 + queued.position))
                XCTAssertEqual(queued.eta, queued.estimatedWait + .seconds(2))
                positions.append(queued.position)
            }
            XCTAssertEqual(positions.sorted(), Array(0..<depth))
            gate.open()
            try await group.waitForAll()
        }
    }
}

func assertDurationsClose(
    _ actual: Duration,
    _ expected: Duration,
    accuracy: Duration,
    file: StaticString = #filePath,
    line: UInt = #line
) {
    XCTAssertLessThanOrEqual(
        abs((actual - expected).seconds), accuracy.seconds, "\(actual) vs \(expected)", file: file, line: line)
}
