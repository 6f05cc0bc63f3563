import CallQueueTestSupport
import XCTest

@testable import CallQueue

/// Batching scenarios written from Triton's and Ray Serve's dynamic batchers: bursts, reused ids, cancelled
/// batches, full batches and the estimates members read. Each one failed before membership moved under the
/// queue's lock.
final class BatcherDefectTests: XCTestCase {
    /// A queue on a manual clock with one group of `slots`, and a batcher whose body records each batch.
    private func recordingBatcher(
        slots: Int, maxBatchSize: Int, maxDelay: Duration
    ) throws -> (ManualClock, CallQueue, Batcher<Int, Int>, Recorder<[Int]>) {
        let clock = ManualClock()
        let queue = try CallQueue(
            configuration: .init(groups: ["gpu": .init(limit: .limited(slots))], clock: clock.lifecycleClock))
        let batches = Recorder<[Int]>()
        let batcher = queue.makeBatcher(group: "gpu", maxBatchSize: maxBatchSize, maxDelay: maxDelay) {
            (inputs: [Int], _: BatchContext) in
            batches.append(inputs)
            return inputs
        }
        return (clock, queue, batcher, batches)
    }

    /// A burst of members submitted while the slot is free: every member gets its own output, never a
    /// `CancellationError` because its input joined the batch after it looked for its output.
    func testABurstOnAFreeSlotLosesNoOutput() async throws {
        let rounds = stressIterations(300, minimum: 30)
        for round in 0..<rounds {
            let queue = try CallQueue(configuration: .init(groups: ["gpu": .init(limit: 1)]))
            let batcher = queue.makeBatcher(group: "gpu", maxBatchSize: 24) { (inputs: [Int], _: BatchContext) in
                inputs.map { $0 + 1 }
            }
            let members = try (0..<24).map { try batcher.submit($0) }
            for (index, member) in members.enumerated() {
                let output = try await member.value
                XCTAssertEqual(output, index + 1, "round \(round), member \(index)")
            }
        }
    }

    /// `submit(y, id:)` with the id of a waiting member is refused as a duplicate and leaves that member's
    /// input alone: it leads its batch with its own input (this crashed the process before).
    func testAReusedIdIsRefusedWithoutTouchingTheWaitingMember() async throws {
        let queue = try CallQueue(configuration: .init(groups: ["gpu": .init(limit: 1)]))
        let batches = Recorder<[String]>()
        let batcher = queue.makeBatcher(group: "gpu", maxBatchSize: 4) { (inputs: [String], _: BatchContext) in
            batches.append(inputs)
            return inputs
        }
        let gate = Gate()
        let holder = try queue.submit(id: "task(holder)", group: "gpu") { _ in await gate.wait() }
        await waitForStatus(queue, "task(holder)") { $0.isRunning }
        let member = try batcher.submit("x", id: "task(a)")
        await assertThrowsCallQueueError(.duplicateTask) { _ = try batcher.submit("y", id: "task(a)") }
        let other = try batcher.submit("z", id: "task(b)")
        gate.open()
        try await holder.value
        let output = try await member.value
        XCTAssertEqual(output, "x")
        let otherOutput = try await other.value
        XCTAssertEqual(otherOutput, "z")
        XCTAssertEqual(batches.elements, [["x", "z"]])
    }

    /// Every member of a forming batch is cancelled during its window; a member that arrives later in the
    /// window is served, not failed with the cancelled batch.
    func testACancelledFormingBatchDoesNotPoisonANewcomer() async throws {
        let (clock, _, batcher, batches) = try recordingBatcher(slots: 1, maxBatchSize: 4, maxDelay: .seconds(1))
        let first = try batcher.submit(1, id: "task(first)")
        let second = try batcher.submit(2, id: "task(second)")
        await waitUntil("the batch waits for companions") { clock.sleeperCount == 1 }
        XCTAssertTrue(first.cancel())
        XCTAssertTrue(second.cancel())
        // Arrives inside the window of the batch whose members were all cancelled.
        let newcomer = try batcher.submit(3, id: "task(newcomer)")
        await assertThrowsCancellation { _ = try await first.value }
        await assertThrowsCancellation { _ = try await second.value }
        await waitUntil("the newcomer's batch waits for companions") {
            clock.sleeperCount == 1 && (try? newcomer.status().state.running) != nil
        }
        clock.advance(by: .seconds(1))
        let output = try await newcomer.value
        XCTAssertEqual(output, 3)
        XCTAssertEqual(batches.elements, [[3]])
    }

    /// A member that arrives while a batch forms joins it, even after its only other member was cancelled.
    func testANewcomerJoinsAFormingBatchWhoseMemberWasCancelled() async throws {
        let (clock, _, batcher, batches) = try recordingBatcher(slots: 1, maxBatchSize: 4, maxDelay: .seconds(1))
        let first = try batcher.submit(1)
        let second = try batcher.submit(2)
        await waitUntil("the batch waits for companions") { clock.sleeperCount == 1 }
        XCTAssertTrue(first.cancel())
        let newcomer = try batcher.submit(3)
        XCTAssertNotNil(try newcomer.status().state.running, "it joined the forming batch")
        clock.advance(by: .seconds(1))
        await assertThrowsCancellation { _ = try await first.value }
        let two = try await second.value
        let three = try await newcomer.value
        XCTAssertEqual([two, three], [2, 3])
        XCTAssertEqual(batches.elements, [[2, 3]])
    }

    /// A batch that reaches its maximum size during its window starts at once: the clock never moves.
    func testAFullBatchStartsWithoutWaitingOutItsWindow() async throws {
        let (_, _, batcher, batches) = try recordingBatcher(slots: 1, maxBatchSize: 4, maxDelay: .seconds(3600))
        let members = try (0..<4).map { try batcher.submit($0) }
        for (index, member) in members.enumerated() {
            let output = try await member.value
            XCTAssertEqual(output, index)
        }
        XCTAssertEqual(batches.elements, [[0, 1, 2, 3]])
    }

    /// A burst inside one window on two free slots forms one batch, not [[0], [1, 2, 3]].
    func testABurstInOneWindowFormsOneBatchOnTwoFreeSlots() async throws {
        let (clock, queue, batcher, batches) = try recordingBatcher(
            slots: 2, maxBatchSize: 8, maxDelay: .milliseconds(20))
        let members = try (0..<4).map { try batcher.submit($0) }
        XCTAssertEqual(queue.groups.first?.runningCount, 1, "one batch holds one slot")
        await waitUntil("the batch waits for companions") { clock.sleeperCount == 1 }
        clock.advance(by: .milliseconds(20))
        for member in members { _ = try await member.value }
        XCTAssertEqual(batches.elements, [[0, 1, 2, 3]])
    }

    /// Members of the batch that runs next all read the same wait, and the next batch one run more; members
    /// that would run in the next batch are admitted under `maxEstimatedWait`, counted as the status counts.
    func testEstimatesAndAdmissionCountBatchesAhead() async throws {
        let clock = ManualClock()
        let queue = try CallQueue(
            configuration: .init(
                groups: ["gpu": .init(limit: 1)], maxEstimatedWait: .seconds(150),
                initialRunTimeEstimate: .seconds(100), clock: clock.lifecycleClock))
        let batcher = queue.makeBatcher(group: "gpu", maxBatchSize: 4) { (inputs: [Int], _: BatchContext) in inputs }
        let gate = Gate()
        let holder = try queue.submit(id: "task(holder)", group: "gpu") { _ in await gate.wait() }
        await waitForStatus(queue, "task(holder)") { $0.isRunning }
        let members = try (0..<4).map { try batcher.submit($0) }
        await assertThrowsCallQueueError(.waitTooLong) { _ = try batcher.submit(4) }
        let waits = try members.map { try $0.status().state.queued?.estimatedWait }
        XCTAssertEqual(waits, Array(repeating: .seconds(100), count: 4))
        gate.open()
        try await holder.value
        for member in members { _ = try await member.value }

        // Without the admission bound: batches [0-3] and [4-7] behind a running call.
        let open = try CallQueue(
            configuration: .init(
                groups: ["gpu": .init(limit: 1)], initialRunTimeEstimate: .seconds(100), clock: clock.lifecycleClock))
        let openBatcher = open.makeBatcher(group: "gpu", maxBatchSize: 4) { (inputs: [Int], _: BatchContext) in inputs }
        let openGate = Gate()
        let openHolder = try open.submit(id: "task(holder)", group: "gpu") { _ in await openGate.wait() }
        await waitForStatus(open, "task(holder)") { $0.isRunning }
        let eight = try (0..<8).map { try openBatcher.submit($0) }
        let eightWaits = try eight.map { try $0.status().state.queued?.estimatedWait.components.seconds }
        XCTAssertEqual(eightWaits, [100, 100, 100, 100, 200, 200, 200, 200])
        openGate.open()
        try await openHolder.value
        for member in eight { _ = try await member.value }
    }
}
