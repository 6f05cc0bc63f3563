import CallQueueTestSupport
import XCTest

@testable import CallQueue

/// Pull-based update streams: positions at most once per interval and only for reportable moves, state
/// changes at once, never backwards, and nothing done for subscribers that do not read.
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
        await waitUntil { queue.lifecycle.scheduler.inspect { $0.groups["default"]?.parkedReaders.count } == 1 }
        XCTAssertTrue(ahead[0].cancel())
        XCTAssertTrue(ahead[1].cancel())
        await waitUntil { clock.sleeperCount == 1 }
        XCTAssertEqual(queue.lifecycle.scheduler.inspect { $0.groups["default"]?.parkedReaders.count }, 1)
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

    /// With a fraction of 0.1, a reader told "30 ahead" is woken and told again only once 3 have left, then
    /// (told 27) once 2 more have left; moves too small to report do not even wake it.
    func testPositionFractionWakesReadersOnlyForReportableMoves() async throws {
        let queue = try CallQueue(configuration: .init(positionUpdateInterval: .zero, positionUpdateFraction: 0.1))
        let gate = Gate()
        let holder = try queue.submit { _ in await gate.wait() }
        var ahead: [JobHandle<Void>] = []
        for _ in 0..<30 { ahead.append(try queue.submit { _ in }) }
        let watched = try queue.submit(id: "task(watched)") { _ in }
        let updates = try watched.updates()
        let heard = Recorder<TaskStatus>()
        let reader = Task { for await status in updates { heard.append(status) } }
        func group() -> (parked: Int, woken: Int) {
            queue.lifecycle.scheduler.inspect { state in
                (state.groups["default"]!.parkedReaders.count, state.groups["default"]!.positionWakeups)
            }
        }
        await waitUntil { heard.count == 1 && group().parked == 1 }
        XCTAssertEqual(heard.elements.last?.state.queued?.position, 30)

        for (cancels, expected) in [(0..<3, 27), (3..<5, 25)] {
            // Read while the reader is parked: once woken, it may record its status before the next line runs.
            let (woken, told) = (group().woken, heard.count + 1)
            for index in cancels.dropLast() {
                XCTAssertTrue(ahead[index].cancel())
                XCTAssertEqual(group().woken, woken, "a move of less than a tenth woke the reader")
            }
            XCTAssertTrue(ahead[cancels.last!].cancel())
            XCTAssertEqual(group().woken, woken + 1, "a move of a tenth woke the reader")
            await waitUntil { heard.count == told && group().parked == 1 }
            XCTAssertEqual(heard.elements.last?.state.queued?.position, expected)
        }
        gate.open()
        try await holder.value
        for job in ahead { _ = try? await job.value }
        try await watched.value
        await reader.value
        XCTAssertEqual(heard.elements.last?.isFinished, true)
    }

    /// Many readers, a fraction of 0.2, rounds of cancels in the line while they read: every
    /// reported move is at least a fifth of the place reported before it (and one place), places never grow,
    /// and whenever the line is still, no reader has missed a move it should have been told of.
    func testPositionFractionNeverMissesAReportableMove() async throws {
        let fraction = 0.2
        let queue = try CallQueue(
            configuration: .init(positionUpdateInterval: .zero, positionUpdateFraction: fraction))
        let count = stressIterations(400, minimum: 80)
        let gate = Gate()
        let holder = try queue.submit { _ in await gate.wait() }
        var jobs: [JobHandle<Void>] = []
        var heard: [Recorder<TaskStatus>] = []
        var readers: [Task<Void, Never>] = []
        for index in 0..<count {
            let job = try queue.submit(id: TaskID("task(\(index))")) { _ in }
            let updates = try job.updates()
            let recorder = Recorder<TaskStatus>()
            readers.append(Task { for await status in updates { recorder.append(status) } })
            jobs.append(job)
            heard.append(recorder)
        }
        // Rounds of cancels; between rounds the line is still, and once every waiting task's reader has read
        // what it will and parked, none may be behind by a reportable move.
        var generator = SystemRandomNumberGenerator()
        var waiting = Array(0..<count)
        for round in 0..<40 {
            await waitUntil("every reader parked") {
                queue.lifecycle.scheduler.inspect { state in
                    waiting.allSatisfy { index in
                        state.tasks[TaskID("task(\(index))")]?.subscriptions.values.allSatisfy { $0.parked != nil }
                            ?? false
                    }
                }
            }
            for index in waiting {
                let actual = try XCTUnwrap(queue.status(of: jobs[index].id).state.queued?.position)
                let told = try XCTUnwrap(heard[index].elements.last?.state.queued?.position)
                XCTAssertLessThan(
                    told - actual, max(1, Int(Double(told) * fraction)),
                    "task \(index) missed a move: told \(told), at \(actual)")
            }
            // Odd rounds cancel the first few (a move of exactly that many for everyone behind), even rounds a
            // few anywhere (a departure behind a reader moves it not at all).
            let many = Int.random(in: 1...3, using: &generator)
            let cancelled = Set(
                round % 2 == 1
                    ? Array(waiting.prefix(many))
                    : (0..<many).compactMap { _ in waiting.randomElement(using: &generator) })
            for index in cancelled.sorted() { jobs[index].cancel() }
            waiting.removeAll { cancelled.contains($0) }
        }

        gate.open()
        try await holder.value
        for job in jobs { _ = try? await job.value }
        for reader in readers { await reader.value }
        for (index, recorder) in heard.enumerated() {
            let statuses = recorder.elements
            XCTAssertEqual(statuses.last?.isFinished, true, "task \(index)")
            let places = statuses.compactMap { $0.state.queued?.position }
            for (previous, next) in zip(places, places.dropFirst()) {
                XCTAssertGreaterThanOrEqual(
                    previous - next, max(1, Int(Double(previous) * fraction)), "task \(index) was told \(places)")
            }
        }
    }

    /// A fraction outside 0..<1 is refused, by the queue and by a lifecycle of its own.
    func testPositionFractionOutsideItsRangeIsRefused() {
        for fraction in [-0.1, 1, 2, .nan, .infinity] {
            XCTAssertThrowsError(try CallQueue(configuration: .init(positionUpdateFraction: fraction))) { error in
                XCTAssertEqual((error as? CallQueueError)?.code, .invalidArgument)
            }
            XCTAssertThrowsError(try TaskLifecycle(configuration: .init(positionUpdateFraction: fraction))) { error in
                XCTAssertEqual((error as? CallQueueError)?.code, .invalidArgument)
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
            queue.lifecycle.scheduler.inspect { state in
                state.tasks["task(followed)"]?.subscriptions.values.contains { $0.parked != nil } ?? false
            }
        }
        reader.cancel()
        let read = await reader.value
        XCTAssertEqual(read, 1)
        XCTAssertEqual(queue.lifecycle.scheduler.inspect { $0.tasks["task(followed)"]?.subscriptions.count }, 0)
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
