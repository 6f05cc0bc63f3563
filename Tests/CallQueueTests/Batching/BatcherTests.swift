import CallQueueTestSupport
import XCTest

@testable import CallQueue

/// Dynamic batching: formation, the delay window, order with ordinary calls, cancel, outputs, stress.
final class BatcherTests: XCTestCase {
    /// A gate per batch: the body records its inputs and waits until the test lets it finish.
    final class Recording: Sendable {
        let batches = Recorder<[Int]>()
        let release = Gate()
    }

    /// Holds the group's one slot until `gate` opens, so that callers queue behind it.
    func holdSlot(_ queue: CallQueue, group: ConcurrencyGroupID = "gpu", gate: Gate) async throws -> JobHandle<Void> {
        let holder = try queue.submit(id: "task(holder)", group: group) { _ in await gate.wait() }
        await waitForStatus(queue, "task(holder)") { $0.isRunning }
        return holder
    }

    func testBatchesFormUpToTheMaximumInArrivalOrder() async throws {
        let queue = try CallQueue(configuration: .init(groups: ["gpu": .init(limit: 1)]))
        let recording = Recording()
        let double = queue.makeBatcher(group: "gpu", maxBatchSize: 4) { (inputs: [Int], context: BatchContext) in
            recording.batches.append(inputs)
            XCTAssertEqual(context.count, inputs.count)
            return inputs.map { $0 * 2 }
        }
        let gate = Gate()
        let holder = try await holdSlot(queue, gate: gate)
        let members = try (0..<10).map { try double.submit($0, id: TaskID("task(m\($0))")) }
        XCTAssertEqual(try members[9].status().state.queued?.position, 9, "positions count calls")
        gate.open()
        try await holder.value
        for (index, member) in members.enumerated() {
            let doubled = try await member.value
            XCTAssertEqual(doubled, index * 2)
        }
        XCTAssertEqual(recording.batches.elements, [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]])
        let stats = await members[5].response.stats
        XCTAssertEqual(stats.batchSize, 4)
    }

    /// A batch shares the group's FIFO order with ordinary calls: its place is its oldest member's, and an
    /// ordinary call between members keeps its turn relative to that batch.
    func testBatchesKeepTheGroupsOrderWithOrdinaryCalls() async throws {
        let queue = try CallQueue(configuration: .init(groups: ["gpu": .init(limit: 1)]))
        let order = Recorder<String>()
        let batcher = queue.makeBatcher(group: "gpu", maxBatchSize: 8) { (inputs: [String], _: BatchContext) in
            order.append("batch " + inputs.joined(separator: ","))
            return inputs
        }
        let gate = Gate()
        let holder = try await holdSlot(queue, gate: gate)
        let plainFirst = try queue.submit(id: "task(plain-1)", group: "gpu") { _ in order.append("plain 1") }
        let a = try batcher.submit("a")
        let plainSecond = try queue.submit(id: "task(plain-2)", group: "gpu") { _ in order.append("plain 2") }
        let b = try batcher.submit("b")
        gate.open()
        try await holder.value
        try await plainFirst.value
        _ = try await a.value
        try await plainSecond.value
        _ = try await b.value
        // a's turn comes after plain 1; its batch takes b along; plain 2 runs after that batch.
        XCTAssertEqual(order.elements, ["plain 1", "batch a,b", "plain 2"])
    }

    /// With a delay, a batch that is not full holds its slot for companions until the delay ends (manual
    /// clock), then runs with whoever came.
    func testTheDelayWindowWaitsForCompanionsOnTheClock() async throws {
        let clock = ManualClock()
        let queue = try CallQueue(configuration: .init(groups: ["gpu": .init(limit: 1)], clock: clock.lifecycleClock))
        let recording = Recording()
        let batcher = queue.makeBatcher(group: "gpu", maxBatchSize: 4, maxDelay: .milliseconds(20)) {
            (inputs: [Int], _: BatchContext) in
            recording.batches.append(inputs)
            return inputs
        }
        let first = try batcher.submit(1)
        await waitUntil { clock.sleeperCount == 1 }  // the batch waits for companions
        let second = try batcher.submit(2)
        XCTAssertEqual(recording.batches.count, 0)
        clock.advance(by: .milliseconds(20))
        _ = try await first.value
        _ = try await second.value
        XCTAssertEqual(recording.batches.elements, [[1, 2]])

        // With no delay, a lone call runs at once.
        let eager = queue.makeBatcher(group: "gpu", maxBatchSize: 4) { (inputs: [Int], _: BatchContext) in inputs }
        let alone = try await eager(7)
        XCTAssertEqual(alone, 7)
    }

    func testOutputCountMismatchFailsEveryMemberWithATypedError() async throws {
        let queue = try CallQueue(configuration: .init(groups: ["gpu": .init(limit: 1)]))
        let broken = queue.makeBatcher(group: "gpu", maxBatchSize: 4) { (inputs: [Int], _: BatchContext) in [0] }
        let gate = Gate()
        let holder = try await holdSlot(queue, gate: gate)
        let members = try (0..<3).map { try broken.submit($0) }
        gate.open()
        try await holder.value
        for member in members {
            await assertThrowsCallQueueError(.invalidBatchOutput) { _ = try await member.value }
        }
    }

    func testOneMemberFailsWithoutTheOthers() async throws {
        let queue = try CallQueue(configuration: .init(groups: ["gpu": .init(limit: 1)]))
        let batcher = queue.makeBatcher(
            group: "gpu", maxBatchSize: 4,
            perMember: {
                (inputs: [Int], _: BatchContext) -> [Result<Int, any Error>] in
                inputs.map { $0 == 1 ? .failure(CallQueueError(.invalidArgument, "one is odd")) : .success($0) }
            })
        let gate = Gate()
        let holder = try await holdSlot(queue, gate: gate)
        let members = try (0..<3).map { try batcher.submit($0, id: TaskID("task(p\($0))")) }
        gate.open()
        try await holder.value
        let zero = try await members[0].value
        XCTAssertEqual(zero, 0)
        await assertThrowsCallQueueError(.invalidArgument) { _ = try await members[1].value }
        let two = try await members[2].value
        XCTAssertEqual(two, 2)
        XCTAssertEqual(
            try queue.status(of: "task(p1)").state.finished?.outcome, .failed(message: "CallQueueError: one is odd"))
    }

    /// A member cancelled in line leaves it, and the batch forms without it; one cancelled while its batch
    /// runs gets CancellationError at once, the body sees it, and the slot stays held until the body returns.
    func testCancelInLineAndWhileRunning() async throws {
        let queue = try CallQueue(configuration: .init(groups: ["gpu": .init(limit: 1)]))
        let recording = Recording()
        let seenCancelled = Recorder<Bool>()
        let running = Gate()
        let batcher = queue.makeBatcher(group: "gpu", maxBatchSize: 8) { (inputs: [Int], context: BatchContext) in
            recording.batches.append(inputs)
            running.open()
            await recording.release.wait()
            seenCancelled.append(context.isCancelled(1))
            return inputs
        }
        let gate = Gate()
        let holder = try await holdSlot(queue, gate: gate)
        let members = try (0..<4).map { try batcher.submit($0, id: TaskID("task(c\($0))")) }
        XCTAssertTrue(members[3].cancel(), "cancelled in line")
        gate.open()
        try await holder.value
        await running.wait()
        XCTAssertEqual(recording.batches.elements, [[0, 1, 2]])
        XCTAssertTrue(members[1].cancel(), "cancelled while its batch runs")
        await assertThrowsCancellation { _ = try await members[1].value }
        let after = try queue.submit(id: "task(after)", group: "gpu") { _ in }
        XCTAssertNotNil(try after.status().state.queued, "the slot is still held by the running batch")
        recording.release.open()
        let zero = try await members[0].value
        XCTAssertEqual(zero, 0)
        try await after.value
        XCTAssertEqual(seenCancelled.elements, [true])
        await assertThrowsCancellation { _ = try await members[3].value }
        XCTAssertEqual(queue.lifecycle.scheduler.inspect { $0.groups["gpu"]?.formingBatches.isEmpty }, true)
        XCTAssertEqual(queue.lifecycle.scheduler.inspect { $0.groups["gpu"]?.batchMembers.isEmpty }, true)
    }

    /// Cancelling every member of a running batch cancels its body.
    func testCancellingEveryMemberCancelsTheBody() async throws {
        let queue = try CallQueue(configuration: .init(groups: ["gpu": .init(limit: 1)]))
        let running = Gate()
        let bodyCancelled = Gate()
        let batcher = queue.makeBatcher(group: "gpu", maxBatchSize: 4) { (inputs: [Int], _: BatchContext) in
            running.open()
            await waitForCancellation()
            bodyCancelled.open()
            return inputs
        }
        let gate = Gate()
        let holder = try await holdSlot(queue, gate: gate)
        let members = try (0..<2).map { try batcher.submit($0) }
        gate.open()
        try await holder.value
        await running.wait()
        for member in members { member.cancel() }
        await bodyCancelled.wait()
        for member in members { await assertThrowsCancellation { _ = try await member.value } }
        try await queue.runGPUCall(group: "gpu") { _ in }  // the slot came back
    }

    /// Many members and ordinary calls on two slots, with random cancels and throws: every caller gets one
    /// outcome, no batch is over its maximum, no more than two bodies run at once.
    func testStressEveryCallerGetsOneOutcome() async throws {
        let queue = try CallQueue(configuration: .init(groups: ["gpu": .init(limit: 2)]))
        let running = HolderCounter()
        let oversized = HolderCounter()
        let batcher = queue.makeBatcher(
            group: "gpu", maxBatchSize: 5,
            perMember: {
                (inputs: [Int], _: BatchContext) -> [Result<Int, any Error>] in
                running.enter()
                defer { running.leave() }
                if inputs.count > 5 { oversized.enter() }
                await Task.yield()
                return inputs.map {
                    $0 % 13 == 0 ? .failure(CallQueueError(.invalidArgument, "unlucky")) : .success($0)
                }
            })
        let count = stressIterations(10_000, minimum: 1_000)
        let outcomes = HolderCounter()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<count {
                group.addTask {
                    if index % 4 == 0 {
                        _ = try? await queue.runGPUCall(group: "gpu") { _ in
                            running.enter()
                            running.leave()
                        }
                    } else {
                        let member = try batcher.submit(index)
                        if index % 7 == 0 { member.cancel() }
                        _ = try? await member.value
                    }
                    outcomes.enter()
                }
            }
            try await group.waitForAll()
        }
        XCTAssertEqual(outcomes.current, count)
        XCTAssertLessThanOrEqual(running.most, 2)
        XCTAssertEqual(oversized.most, 0)
        XCTAssertTrue(queue.liveTasks.isEmpty)
        XCTAssertEqual(queue.lifecycle.scheduler.inspect { $0.groups["gpu"]?.formingBatches.count ?? 0 }, 0)
        // A batch gives its slot back just after handing out its outputs: no slot is leaked.
        await waitUntil("every slot is free again") { queue.groups.first?.runningCount == 0 }
    }
}
