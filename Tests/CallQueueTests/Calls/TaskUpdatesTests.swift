import CallQueueTestSupport
import XCTest

@testable import CallQueue

final class TaskUpdatesTests: XCTestCase {
    /// The stream carries queued, running (with progress) and finished, then ends.
    func testStreamFollowsTheTaskAndEnds() async throws {
        let queue = try CallQueue()
        let gate = Gate()
        let holder = Task { try await queue.runGPUCall(id: "task(holder)") { _ in await gate.wait() } }
        await waitForStatus(queue, "task(holder)") { $0.isRunning }
        let reported = Gate()
        let proceed = Gate()
        let job = Task {
            try await queue.runGPUCall(id: "task(job)") { context in
                context.report(fraction: 0.5, step: "half")
                reported.open()
                await proceed.wait()
            }
        }
        await waitForStatus(queue, "task(job)") { $0.isQueued }
        let updates = try queue.updates(of: "task(job)")
        // Statuses are read when the reader asks (newest wins), so the test waits for each one it checks.
        let read = Recorder<TaskStatus.State>()
        let collector = Task {
            for await status in updates { read.append(status.state) }
        }
        await waitUntil("the queued status is read") { read.count == 1 }
        gate.open()
        await reported.wait()
        await waitUntil("a running status is read") { read.elements.contains { $0.running?.progress == 0.5 } }
        proceed.open()
        try await holder.value
        try await job.value
        await collector.value
        let states = read.elements
        XCTAssertTrue(states.first?.isQueued ?? false, "\(states)")
        XCTAssertEqual(states.last?.finished?.outcome, .succeeded)
        XCTAssertTrue(states.contains { $0.isRunning })
        XCTAssertNil(
            queue.lifecycle.scheduler.inspect { $0.tasks["task(job)"] }, "the task and its subscriptions are freed")
    }

    /// A subscriber that never reads holds nothing back: a thousand progress reports go through, and only
    /// the latest status is buffered.
    func testSlowSubscriberNeverBlocksAndSeesTheLatest() async throws {
        let queue = try CallQueue()
        let started = Gate()
        let proceed = Gate()
        let job = Task {
            try await queue.runGPUCall(id: "task(busy)") { context in
                started.open()
                await proceed.wait()
                for step in 1...1_000 { context.report(completed: step, of: 1_000) }
            }
        }
        await started.wait()
        let updates = try queue.updates(of: "task(busy)")
        proceed.open()
        try await job.value  // finished although nobody read the stream
        var seen: [TaskStatus.State] = []
        for await status in updates { seen.append(status.state) }
        XCTAssertEqual(seen.count, 1, "coalesced to the newest: \(seen)")
        XCTAssertEqual(seen.first?.finished?.outcome, .succeeded)
    }

    /// Waiting subscribers get their new positions when the queue moves.
    func testPositionsArePushedWhenTheQueueMoves() async throws {
        let queue = try CallQueue()
        let gate = Gate()
        let holder = Task { try await queue.runGPUCall(id: "task(holder)") { _ in await gate.wait() } }
        await waitForStatus(queue, "task(holder)") { $0.isRunning }
        let ahead = Task { try await queue.runGPUCall(id: "task(ahead)") { _ in } }
        await waitForStatus(queue, "task(ahead)") { $0.queued?.position == 0 }
        let behind = Task { try await queue.runGPUCall(id: "task(behind)") { _ in await gate.wait() } }
        await waitForStatus(queue, "task(behind)") { $0.queued?.position == 1 }
        let updates = try queue.updates(of: "task(behind)")
        var iterator = updates.makeAsyncIterator()
        let first = await iterator.next()
        XCTAssertEqual(first?.state.queued?.position, 1)
        try queue.cancel("task(ahead)")
        let moved = await iterator.next()
        XCTAssertEqual(moved?.state.queued?.position, 0)
        gate.open()
        try await holder.value
        _ = try? await ahead.value
        try await behind.value
    }

    func testFinishedTaskStreamHoldsTheFinalStatus() async throws {
        let queue = try CallQueue()
        try await queue.runGPUCall(id: "task(done)") { _ in }
        var states: [TaskStatus.State] = []
        for await status in try queue.updates(of: "task(done)") { states.append(status.state) }
        XCTAssertEqual(states.count, 1)
        XCTAssertEqual(states.first?.finished?.outcome, .succeeded)
    }

    func testObserverSeesEveryTransition() async throws {
        let observer = RecordingObserver()
        let queue = try CallQueue(configuration: .init(observer: observer))
        try await queue.runGPUCall(id: "task(seen)") { _ in }
        let states = observer.statuses.elements.filter { $0.id == "task(seen)" }.map(\.state)
        XCTAssertEqual(states.count, 3, "\(states)")
        XCTAssertTrue(states[0].isQueued)
        XCTAssertTrue(states[1].isRunning)
        XCTAssertEqual(states[2].finished?.outcome, .succeeded)
    }

    func testStatusIsCodable() throws {
        let status = TaskStatus(
            id: "task(x)",
            group: "gpu",
            state: .queued(
                .init(position: 2, queueSize: 5, heldBy: .group, estimatedWait: .seconds(3), eta: .seconds(5)))
        )
        let decoded = try JSONDecoder().decode(TaskStatus.self, from: JSONEncoder().encode(status))
        XCTAssertEqual(decoded, status)
    }
}
