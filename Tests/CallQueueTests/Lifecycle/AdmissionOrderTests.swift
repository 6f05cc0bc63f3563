import CallQueueTestSupport
import XCTest

@testable import CallQueue

/// Admission and the place in line are one step; every waiting call is counted; bad numbers are refused.
final class AdmissionOrderTests: XCTestCase {
    /// A submitted job is in line, at its position, when `submit` returns, and starts before every call
    /// admitted after it. (Before, a task was registered as queued before it joined the line, and a later
    /// call could overtake it.)
    func testSubmittedJobsHaveTheirPlaceWhenAdmittedAndStartInThatOrder() async throws {
        let queue = try CallQueue()
        let gate = Gate()
        let starts = Recorder<TaskID>()
        let holder = try queue.submit(id: "task(holder)") { _ in await gate.wait() }
        var handles: [JobHandle<Void>] = []
        for index in 0..<50 {
            let handle = try queue.submit(id: TaskID("task(\(index))")) { context in starts.append(context.taskID) }
            // No waiting: the position is known at once and is the one it has.
            XCTAssertEqual(try handle.status().state.queued?.position, index)
            handles.append(handle)
        }
        gate.open()
        try await holder.value
        for handle in handles { try await handle.value }
        XCTAssertEqual(starts.elements, (0..<50).map { TaskID("task(\($0))") })
    }

    /// The observer sees a task's finish before the start of the call its slot went to.
    func testFinishIsObservedBeforeTheNextStart() async throws {
        let observer = RecordingObserver()
        let queue = try CallQueue(configuration: .init(observer: observer))
        let gate = Gate()
        let count = 40
        let holder = try queue.submit(id: "task(first)") { _ in await gate.wait() }
        var handles: [JobHandle<Void>] = []
        for index in 0..<count {
            handles.append(try queue.submit(id: TaskID("task(\(index))")) { _ in })
        }
        // Every waiter has suspended, so each start is reported by the finish that let it in.
        await waitUntil { queue.lifecycle.scheduler.inspect { $0.parkedWaiters } == count }
        gate.open()
        try await holder.value
        for handle in handles { try await handle.value }
        let events = observer.statuses.elements.filter { !$0.state.isQueued }
        var order: [String] = []
        for status in events { order.append("\(status.state.name) \(status.id)") }
        for index in 0..<count {
            let previous = index == 0 ? "task(first)" : "task(\(index - 1))"
            let finished = try XCTUnwrap(order.firstIndex(of: "finished \(previous)"))
            let started = try XCTUnwrap(order.firstIndex(of: "running task(\(index))"))
            XCTAssertLessThan(finished, started, "\(previous) finished before task(\(index)) started: \(order)")
        }
    }

    /// Calls waiting for a budget and untracked `runQueued` calls count in the queue size like any other.
    func testBudgetWaitersAndRunQueuedCallsCountInQueueSize() async throws {
        let queue = try CallQueue(
            configuration: .init(groups: [
                "vram": .init(limit: 4, maxQueueSize: 1, budget: 10),
                "lock": .init(limit: 1, maxQueueSize: 1),
            ]))
        let gate = Gate()
        let big = try queue.submit(group: "vram", weight: 8) { _ in await gate.wait() }
        // Slots are free, but the budget is not: this one waits and fills the queue of 1.
        let waiting = try queue.submit(group: "vram", weight: 5) { _ in }
        XCTAssertEqual(try waiting.status().state.queued?.position, 0)
        XCTAssertThrowsError(try queue.submit(group: "vram", weight: 3) { _ in }) { error in
            XCTAssertEqual((error as? CallQueueError)?.code, .queueFull, "\(error)")
        }

        let holding = Task { try await queue.runQueued(group: "lock") { await gate.wait() } }
        await waitUntil { queue.lifecycle.scheduler.inspect { $0.groups["lock"]?.running.count } == 1 }
        let queuedUntracked = Task { try await queue.runQueued(group: "lock") {} }
        await waitUntil { queue.lifecycle.scheduler.inspect { $0.groups["lock"]?.line.count } == 1 }
        XCTAssertThrowsError(try queue.submit(group: "lock") { _ in }) { error in
            XCTAssertEqual((error as? CallQueueError)?.code, .queueFull, "an untracked waiter counts: \(error)")
        }
        gate.open()
        try await big.value
        try await waiting.value
        try await holding.value
        try await queuedUntracked.value
    }

    /// A weight on a group without a budget is refused on every path, `runQueued` included.
    func testWeightIsTreatedTheSameOnEveryPath() async throws {
        let queue = try CallQueue()
        await assertThrowsCallQueueError(.invalidArgument) { try await queue.runQueued(weight: 2) {} }
        await assertThrowsCallQueueError(.invalidArgument) { try await queue.runGPUCall(weight: 2) { _ in } }
        XCTAssertThrowsError(try queue.submit(weight: 2) { _ in })
        XCTAssertTrue(queue.liveTasks.isEmpty, "nothing half-registered")
    }

    /// Limits, budgets and process-wide limits beyond what the queue can count are refused when it is built.
    func testOverLargeNumbersAreRefusedAtConfiguration() {
        let configurations: [CallQueue.Configuration] = [
            .init(defaultLimit: .limited(.max)),
            .init(groups: ["gpu": .init(limit: .limited(.max))]),
            .init(groups: ["gpu": .init(budget: .max)]),
            .init(processWideLimit: .max),
            .init(maxEstimatedWait: .seconds(-1)),
            .init(positionUpdateInterval: .seconds(-1)),
        ]
        for configuration in configurations {
            XCTAssertThrowsError(try CallQueue(configuration: configuration)) { error in
                XCTAssertEqual((error as? CallQueueError)?.code, .invalidArgument, "\(error)")
            }
        }
    }

    /// Undeclared groups follow the policy: rejected with a typed error, or made and freed when idle.
    func testUndeclaredGroupsAreRejectedOrFreedWhenIdle() async throws {
        let strict = try CallQueue(configuration: .init(groups: ["gpu": .init()], undeclaredGroups: .reject))
        await assertThrowsCallQueueError(.unknownGroup) { try await strict.runGPUCall(group: "typo") { _ in } }
        try await strict.runGPUCall(group: "gpu") { _ in }

        let lenient = try CallQueue()
        for index in 0..<1_000 {
            try await lenient.runGPUCall(group: ConcurrencyGroupID("user-\(index)")) { _ in }
        }
        let groups = lenient.lifecycle.scheduler.inspect { $0.groups.count }
        XCTAssertEqual(groups, 64, "idle undeclared groups beyond the 64 kept for reuse were freed")
    }
}

extension AdmissionOrderTests {
    /// The queue's groups as a server's `GET /queue` shows them.
    func testGroupSnapshotsShowLimitsRunningSlotsAndWaiting() async throws {
        let queue = try CallQueue(configuration: .init(groups: ["gpu": .init(limit: 2), "idle": .init(limit: 3)]))
        let gate = Gate()
        var jobs: [JobHandle<Void>] = []
        for index in 0..<5 {
            jobs.append(try queue.submit(id: TaskID("task(\(index))"), group: "gpu") { _ in await gate.wait() })
        }
        await waitUntil { queue.groups.first { $0.group == "gpu" }?.running.count == 2 }
        let snapshots = queue.groups
        XCTAssertEqual(snapshots.map(\.group), ["gpu", "idle"])
        XCTAssertEqual(snapshots[0].limit, 2)
        XCTAssertEqual(snapshots[0].running.map(\.slot), [0, 1])
        XCTAssertEqual(snapshots[0].waiting, 3)
        XCTAssertEqual(snapshots[1].runningCount, 0)
        gate.open()
        for job in jobs { try await job.value }
    }
}
