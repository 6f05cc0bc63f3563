import XCTest

@testable import CallQueue

/// Pull-based update streams: positions at most once per interval, state changes at once, never backwards,
/// and nothing done for subscribers that do not read.
final class UpdateStreamTests: XCTestCase {
    /// With a manual clock: moves in the line are not pushed until the interval has passed, then once,
    /// coalesced to the newest position.
    func testPositionChangesArePushedOncePerInterval() async throws {
        let clock = ManualClock()
        let queue = try CallQueue(
            configuration: .init(positionUpdateInterval: .seconds(1), clock: clock.lifecycleClock))
        let gate = Gate()
        let holder = try queue.submit(id: "task(holder)") { _ in await gate.wait() }
        var ahead: [JobHandle<Void>] = []
        for index in 0..<3 { ahead.append(try queue.submit(id: TaskID("task(ahead-\(index))")) { _ in }) }
        let watched = try queue.submit(id: "task(watched)") { _ in }
        var updates = try watched.updates().makeAsyncIterator()
        let first = await updates.next()
        XCTAssertEqual(first?.state.queued?.position, 3)

        // Two leave; the reader is parked; a flush is scheduled on the clock, not delivered yet.
        let reader = Task {
            var iterator = updates
            return await iterator.next()
        }
        await waitUntil { queue.lifecycle.state.withLock { $0.groups["default"]?.parkedReaders.count } == 1 }
        XCTAssertTrue(ahead[0].cancel())
        XCTAssertTrue(ahead[1].cancel())
        await waitUntil { clock.sleeperCount == 1 }
        XCTAssertEqual(queue.lifecycle.state.withLock { $0.groups["default"]?.parkedReaders.count }, 1)
        clock.advance(by: .seconds(1))
        let moved = await reader.value
        XCTAssertEqual(moved?.state.queued?.position, 1, "one message for two moves")
        gate.open()
        try await holder.value
        _ = try? await ahead[0].value
        _ = try? await ahead[1].value
        try await ahead[2].value
        try await watched.value
    }

    /// Subscribers that never read cost nothing when the line moves: no reader is woken, no flush scheduled.
    func testIdleSubscribersCostNothingPerHandOff() async throws {
        let clock = ManualClock()
        let queue = try CallQueue(
            configuration: .init(positionUpdateInterval: .seconds(1), clock: clock.lifecycleClock))
        let gate = Gate()
        let holder = try queue.submit { _ in await gate.wait() }
        var jobs: [JobHandle<Void>] = []
        var streams: [TaskUpdates] = []
        for _ in 0..<100 {
            let job = try queue.submit { _ in }
            jobs.append(job)
            streams.append(try job.updates())
        }
        gate.open()
        try await holder.value
        for job in jobs { try await job.value }
        XCTAssertEqual(clock.sleeperCount, 0, "no flush was scheduled for subscribers that never read")
        XCTAssertEqual(streams.count, 100)
        // Each stream still ends with its task's final status.
        for stream in streams {
            var statuses: [TaskStatus] = []
            for await status in stream { statuses.append(status) }
            XCTAssertEqual(statuses.count, 1)
            XCTAssertEqual(statuses.first?.state.finished?.outcome, .succeeded)
        }
    }

    /// Many jobs through one slot, each followed by a reader of every element, with progress, throws and
    /// cancels: every stream's versions only grow, its states never go back, its positions never grow.
    func testStreamsNeverGoBackwards() async throws {
        let queue = try CallQueue(configuration: .init(positionUpdateInterval: .zero))
        let count = stressIterations(300, minimum: 60)
        let gate = Gate()
        let holder = try queue.submit { _ in await gate.wait() }
        var jobs: [JobHandle<Int>] = []
        var readers: [Task<[TaskStatus], Never>] = []
        for index in 0..<count {
            let job = try queue.submit { context -> Int in
                for step in 1...3 { context.report(completed: step, of: 3) }
                if index % 7 == 3 { throw CallQueueError(.invalidArgument, "failing on purpose") }
                return index
            }
            let updates = try job.updates()
            readers.append(Task { await Array(updates) })
            jobs.append(job)
        }
        for index in stride(from: 5, to: count, by: 11) { jobs[index].cancel() }
        gate.open()
        try await holder.value
        for job in jobs { _ = try? await job.value }
        for reader in readers {
            let statuses = await reader.value
            XCTAssertEqual(statuses.last?.isFinished, true)
            var rank = 0
            var position = Int.max
            for (previous, next) in zip(statuses, statuses.dropFirst()) {
                XCTAssertLessThan(previous.version, next.version, "\(statuses)")
            }
            for status in statuses {
                let stateRank = status.state.queued != nil ? 0 : status.state.running != nil ? 1 : 2
                XCTAssertGreaterThanOrEqual(stateRank, rank, "went back: \(statuses)")
                rank = stateRank
                if let queued = status.state.queued {
                    XCTAssertLessThanOrEqual(queued.position, position, "moved back: \(statuses)")
                    position = queued.position
                }
            }
        }
    }

    /// The reading task's cancellation ends its sequence; the job goes on.
    func testCancellingTheReaderEndsTheStreamNotTheJob() async throws {
        let queue = try CallQueue()
        let gate = Gate()
        let job = try queue.submit(id: "task(followed)") { _ in await gate.wait() }
        let updates = try job.updates()
        let reader = Task { () -> Int in
            var count = 0
            for await _ in updates { count += 1 }
            return count
        }
        await waitUntil {
            queue.lifecycle.state.withLock { state in
                state.tasks["task(followed)"]?.subscriptions.values.contains { $0.parked != nil } ?? false
            }
        }
        reader.cancel()
        let read = await reader.value
        XCTAssertEqual(read, 1)
        XCTAssertEqual(queue.lifecycle.state.withLock { $0.tasks["task(followed)"]?.subscriptions.count }, 0)
        gate.open()
        try await job.value
    }
}

extension AsyncSequence where Failure == Never {
    /// Every element, in order.
    func collected() async -> [Element] {
        var all: [Element] = []
        for await element in self { all.append(element) }
        return all
    }
}

extension Array {
    init<S: AsyncSequence>(_ sequence: S) async where S.Element == Element, S.Failure == Never {
        self = await sequence.collected()
    }
}
