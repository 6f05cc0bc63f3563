import CallQueueTestSupport
import XCTest

@testable import CallQueue

final class CallQueueGroupTests: XCTestCase {
    func testInvalidLimitsAreRejected() {
        for limit in [0, -1] {
            XCTAssertThrowsError(try CallQueue(configuration: .init(groups: ["gpu": .init(limit: .limited(limit))]))) {
                XCTAssertEqual(($0 as? CallQueueError)?.code, .invalidArgument)
                XCTAssertTrue("\($0)".contains("gpu"), "\($0)")
            }
            XCTAssertThrowsError(try CallQueue(configuration: .init(defaultLimit: .limited(limit))))
        }
        XCTAssertThrowsError(try CallQueue(configuration: .init(groups: ["gpu": .init(budget: 0)])))
        XCTAssertThrowsError(try CallQueue(configuration: .init(processWideLimit: 0)))
        XCTAssertNoThrow(try CallQueue(configuration: .init(defaultLimit: .unlimited)))
    }

    /// Two call sites name one group of limit 2: under 10,000 calls with random cancellations the group
    /// never runs more than 2, every running call has a distinct slot in 0..<2, and nothing is left over.
    func testTwoCallSitesShareOneLimitUnderLoad() async throws {
        let queue = try CallQueue(configuration: .init(groups: ["gpu": .init(limit: 2)]))
        let running = HolderCounter()
        let slotsInUse = LockedState<Set<Int>>([])
        let badSlots = HolderCounter()
        @Sendable func body(_ context: CallContext) async throws -> Int {
            running.enter()
            let fresh = slotsInUse.withLock { $0.insert(context.slot).inserted }
            if !fresh || !(0..<2).contains(context.slot) { badSlots.enter() }
            await Task.yield()
            slotsInUse.withLock { _ = $0.remove(context.slot) }
            running.leave()
            return context.slot
        }
        let calls = stressIterations(10_000, minimum: 1_000)
        await withTaskGroup(of: Void.self) { group in
            for index in 0..<calls {
                group.addTask {
                    let call = Task {
                        // Two call sites: the scoped call and a wrapped function, same group.
                        if index % 2 == 0 {
                            _ = try await queue.runGPUCall(group: "gpu", body)
                        } else {
                            let wrapped = wrapGPUCall(queue, group: "gpu") { (_: Int) in
                                try await body(CallContext.current!)
                            }
                            _ = await wrapped(index)
                        }
                    }
                    if index % 7 == 0 { call.cancel() }
                    _ = try? await call.value
                }
            }
        }
        XCTAssertLessThanOrEqual(running.most, 2)
        XCTAssertEqual(running.current, 0)
        XCTAssertEqual(badSlots.current, 0, "a slot was outside 0..<2 or given to two calls at once")
        XCTAssertTrue(queue.liveTasks.isEmpty)
        let (stillRunning, waiting) = queue.lifecycle.scheduler.inspect {
            ($0.groups["gpu"]?.running.count, $0.waitingInAll)
        }
        XCTAssertEqual(stillRunning, 0, "every slot is free again")
        XCTAssertEqual(waiting, 0, "nobody is left in line")
    }

    func testUndeclaredGroupsTakeTheDefaultLimit() async throws {
        let queue = try CallQueue(configuration: .init(defaultLimit: 3, groups: ["one": .init(limit: 1)]))
        let counter = HolderCounter()
        let gate = Gate()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<6 {
                group.addTask {
                    try await queue.runGPUCall(group: "other") { _ in
                        counter.enter()
                        await gate.wait()
                        counter.leave()
                    }
                }
            }
            await waitUntil { counter.current == 3 && queue.liveTasks.count == 6 }
            XCTAssertEqual(queue.liveTasks.filter { $0.state.isQueued }.count, 3)
            gate.open()
            try await group.waitForAll()
        }
        XCTAssertEqual(counter.most, 3)
    }

    func testUnlimitedGroupRunsEverythingWithDistinctSlots() async throws {
        let queue = try CallQueue(configuration: .init(groups: ["cpu": .init(limit: .unlimited)]))
        let gate = Gate()
        let slots = Recorder<Int>()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<5 {
                group.addTask {
                    try await queue.runGPUCall(group: "cpu") { context in
                        slots.append(context.slot)
                        await gate.wait()
                    }
                }
            }
            await waitUntil { slots.count == 5 }
            gate.open()
            try await group.waitForAll()
        }
        XCTAssertEqual(Set(slots.elements), Set(0..<5))
    }

    func testFullQueueRejectsAtOnceAndLeavesNothingBehind() async throws {
        let queue = try CallQueue(configuration: .init(groups: ["gpu": .init(limit: 1, maxQueueSize: 2)]))
        let gate = Gate()
        let holder = Task { try await queue.runGPUCall(id: "task(holder)", group: "gpu") { _ in await gate.wait() } }
        await waitForStatus(queue, "task(holder)") { $0.isRunning }
        let waiters = (0..<2).map { index in
            Task { try await queue.runGPUCall(id: TaskID("task(w\(index))"), group: "gpu") { _ in } }
        }
        await waitUntil { queue.liveTasks.count == 3 }
        do {
            try await queue.runGPUCall(id: "task(rejected)", group: "gpu") { _ in XCTFail("must not run") }
            XCTFail("expected queueFull")
        } catch let error as CallQueueError {
            XCTAssertEqual(error.code, .queueFull)
            XCTAssertEqual(error.group, "gpu")
            XCTAssertEqual(error.queueSize, 2)
            XCTAssertEqual(error.maxQueueSize, 2)
            XCTAssertTrue(error.message.contains("'gpu'") && error.message.contains("limit 1"), error.message)
        }
        XCTAssertThrowsError(try queue.status(of: "task(rejected)")) {
            XCTAssertEqual(($0 as? CallQueueError)?.code, .unknownTask)
        }
        gate.open()
        try await holder.value
        for waiter in waiters { try await waiter.value }
        // Room again: admitted.
        try await queue.runGPUCall(group: "gpu") { _ in }
    }

    /// The overall bound counts calls that must wait, in every group; a call that starts at once is not
    /// queued and is admitted.
    func testOverallQueueSizeCountsAllGroups() async throws {
        let queue = try CallQueue(configuration: .init(maxQueueSize: 1))
        let gateA = Gate()
        let gateB = Gate()
        let runningA = Task { try await queue.runGPUCall(id: "task(a1)", group: "a") { _ in await gateA.wait() } }
        await waitForStatus(queue, "task(a1)") { $0.isRunning }
        let waitingA = Task { try await queue.runGPUCall(id: "task(a2)", group: "a") { _ in } }
        await waitForStatus(queue, "task(a2)") { $0.isQueued }
        let runningB = Task { try await queue.runGPUCall(id: "task(b1)", group: "b") { _ in await gateB.wait() } }
        await waitForStatus(queue, "task(b1)") { $0.isRunning }
        await assertThrowsCallQueueError(.queueFull) { try await queue.runGPUCall(group: "b") { _ in } }
        await assertThrowsCallQueueError(.queueFull) { try await queue.runGPUCall(group: "a") { _ in } }
        gateA.open()
        gateB.open()
        try await runningA.value
        try await waitingA.value
        try await runningB.value
    }

    func testQueueSizeZeroAdmitsWhileASlotIsFree() async throws {
        let queue = try CallQueue(configuration: .init(groups: ["gpu": .init(limit: 2, maxQueueSize: 0)]))
        let gate = Gate()
        let first = Task { try await queue.runGPUCall(id: "task(1)", group: "gpu") { _ in await gate.wait() } }
        let second = Task { try await queue.runGPUCall(id: "task(2)", group: "gpu") { _ in await gate.wait() } }
        await waitForStatus(queue, "task(1)") { $0.isRunning }
        await waitForStatus(queue, "task(2)") { $0.isRunning }
        await assertThrowsCallQueueError(.queueFull) { try await queue.runGPUCall(group: "gpu") { _ in } }
        gate.open()
        try await first.value
        try await second.value
    }

    func testWeightsCountAgainstTheGroupBudget() async throws {
        let queue = try CallQueue(configuration: .init(groups: ["vram": .init(limit: 4, budget: 10)]))
        let gate = Gate()
        let big = Task {
            try await queue.runGPUCall(id: "task(big)", group: "vram", weight: 6) { _ in await gate.wait() }
        }
        await waitForStatus(queue, "task(big)") { $0.isRunning }
        let other = Task { try await queue.runGPUCall(id: "task(other)", group: "vram", weight: 5) { _ in } }
        await waitForStatus(queue, "task(other)") { $0.queued?.position == 0 }
        XCTAssertEqual(try queue.status(of: "task(other)").state.queued?.heldBy, .group)
        await assertThrowsCallQueueError(.invalidArgument) {
            try await queue.runGPUCall(group: "vram", weight: 11) { _ in }
        }
        await assertThrowsCallQueueError(.invalidArgument) {
            try await queue.runGPUCall(group: "no-budget", weight: 1) { _ in }
        }
        gate.open()
        try await big.value
        try await other.value
    }

    func testProcessWideLimitIsExplicitAndReported() async throws {
        let queue = try CallQueue(configuration: .init(defaultLimit: .unlimited, processWideLimit: 1))
        let gate = Gate()
        let first = Task { try await queue.runGPUCall(id: "task(a)", group: "x") { _ in await gate.wait() } }
        await waitForStatus(queue, "task(a)") { $0.isRunning }
        let second = Task { try await queue.runGPUCall(id: "task(b)", group: "y") { _ in } }
        await waitForStatus(queue, "task(b)") { $0.queued?.heldBy == .processLimit }
        gate.open()
        try await first.value
        try await second.value
    }

    /// A cancelled running call keeps its slot until its body returns (Gradio frees it at once).
    func testCancelledRunningCallHoldsItsSlotUntilItReturns() async throws {
        let queue = try CallQueue()
        let bodyStarted = Gate()
        let sawCancel = Gate()
        let finish = Gate()
        let first = Task {
            try await queue.runGPUCall(id: "task(first)") { _ in
                bodyStarted.open()
                await waitUntil { Task.isCancelled }
                sawCancel.open()
                await finish.wait()
            }
        }
        // The body itself, not the status: a call cancelled between its grant and its body never runs it.
        await bodyStarted.wait()
        let second = Task { try await queue.runGPUCall(id: "task(second)") { _ in } }
        await waitForStatus(queue, "task(second)") { $0.isQueued }
        first.cancel()
        await sawCancel.wait()
        XCTAssertTrue(
            try queue.status(of: "task(second)").state.isQueued, "the slot was freed before the body returned")
        finish.open()
        try await first.value
        try await second.value
    }

    func testCloseFailsWaitingCallsAndRefusesNewOnes() async throws {
        let queue = try CallQueue()
        let gate = Gate()
        let running = Task { try await queue.runGPUCall(id: "task(r)") { _ in await gate.wait() } }
        await waitForStatus(queue, "task(r)") { $0.isRunning }
        let waiting = Task { try await queue.runGPUCall(id: "task(w)") { _ in } }
        await waitForStatus(queue, "task(w)") { $0.isQueued }
        queue.close()
        await assertThrowsCallQueueError(.closed) { try await waiting.value }
        await assertThrowsCallQueueError(.closed) { try await queue.runGPUCall { _ in } }
        gate.open()
        try await running.value
        guard case .failed(let message) = try queue.status(of: "task(w)").state.finished?.outcome else {
            return XCTFail("the waiting call should have failed")
        }
        XCTAssertTrue(message.hasPrefix("CallQueueError: ") && message.contains("closed"), message)
    }
}
