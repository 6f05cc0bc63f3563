import CallQueueTestSupport
import Foundation
import XCTest

@testable import CallQueue

/// Yields until `condition` holds. Gives up (and fails the test) only after a generous wall-clock bound, so a
/// bug shows up as a failure rather than a hung test run; the bound is never what a test measures.
func waitUntil(
    _ what: @autoclosure () -> String = "condition",
    file: StaticString = #filePath,
    line: UInt = #line,
    _ condition: () -> Bool
) async {
    let giveUp = ContinuousClock.now + .seconds(120)
    var spins = 0
    while !condition() {
        spins += 1
        if spins % 1024 == 0 && ContinuousClock.now > giveUp {
            XCTFail("gave up waiting for \(what())", file: file, line: line)
            return
        }
        await Task.yield()
    }
}

/// Waits until `semaphore` has exactly `count` waiters queued.
func waitForWaiters(
    _ semaphore: FIFOSemaphore,
    _ count: Int,
    file: StaticString = #filePath,
    line: UInt = #line
) async {
    await waitUntil("\(count) waiters", file: file, line: line) { semaphore.snapshot.waiting == count }
}

/// Runs `body` `count` times; a scale below 1 from `CALLQUEUE_STRESS_SCALE` shortens stress loops for
/// slow builds (the sanitizer run), never below `minimum`.
func stressIterations(_ count: Int, minimum: Int) -> Int {
    guard let text = ProcessInfo.processInfo.environment["CALLQUEUE_STRESS_SCALE"], let scale = Double(text) else {
        return count
    }
    return max(minimum, Int(Double(count) * scale))
}

extension XCTestCase {
    /// Asserts that `body` throws an error of type `E`, and returns it.
    @discardableResult
    func assertThrows<E: Error>(
        _ type: E.Type,
        _ body: () async throws -> Void,
        file: StaticString = #filePath,
        line: UInt = #line
    ) async -> E? {
        do {
            try await body()
            XCTFail("expected \(E.self), got success", file: file, line: line)
        } catch let error as E {
            return error
        } catch {
            XCTFail("expected \(E.self), got \(error)", file: file, line: line)
        }
        return nil
    }

    /// Asserts that `body` throws `CancellationError`.
    func assertThrowsCancellation(
        _ body: () async throws -> Void,
        file: StaticString = #filePath,
        line: UInt = #line
    ) async {
        await assertThrows(CancellationError.self, body, file: file, line: line)
    }

    /// Asserts that `body` throws a ``CallQueueError`` with `code`.
    func assertThrowsCallQueueError(
        _ code: CallQueueError.Code,
        _ body: () async throws -> Void,
        file: StaticString = #filePath,
        line: UInt = #line
    ) async {
        let error = await assertThrows(CallQueueError.self, body, file: file, line: line)
        if let error {
            XCTAssertEqual(error.code, code, "\(error)", file: file, line: line)
        }
    }
}

/// Waits until the task's status satisfies `condition`.
func waitForStatus(
    _ queue: CallQueue,
    _ id: TaskID,
    file: StaticString = #filePath,
    line: UInt = #line,
    _ condition: @escaping (TaskStatus.State) -> Bool
) async {
    await waitUntil("status of \(id)", file: file, line: line) {
        guard let status = try? queue.status(of: id) else { return false }
        return condition(status.state)
    }
}

extension TaskStatus.State {
    var isQueued: Bool { queued != nil }
    var isRunning: Bool { running != nil }
}

/// An observer that records what it is told.
final class RecordingObserver: CallQueueObserver {
    let statuses = Recorder<TaskStatus>()
    let failures = Recorder<CallFailureReport>()

    func taskDidChange(_ status: TaskStatus) { statuses.append(status) }
    func callDidFail(_ report: CallFailureReport) { failures.append(report) }
}

/// A clock that moves only when a test says so: `advance(by:)` wakes every sleeper whose instant has come.
/// Injected through ``LifecycleClock``, it makes ETAs, elapsed times, deadlines and push pauses exact.
final class ManualClock: Sendable {
    private struct Sleeper {
        var deadline: ContinuousClock.Instant
        var continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var now: ContinuousClock.Instant
        var sleepers: [Int: Sleeper] = [:]
        var nextKey = 0
    }

    private let state = LockedState(State(now: ContinuousClock.now))

    var now: ContinuousClock.Instant { state.withLock { $0.now } }

    var lifecycleClock: LifecycleClock {
        LifecycleClock(now: { self.now }, sleep: { try await self.sleep(until: $0) })
    }

    /// How many tasks are sleeping on this clock.
    var sleeperCount: Int { state.withLock { $0.sleepers.count } }

    func advance(by duration: Duration) {
        let due = state.withLock { state -> [CheckedContinuation<Void, any Error>] in
            state.now += duration
            let due = state.sleepers.filter { $0.value.deadline <= state.now }
            for key in due.keys { state.sleepers[key] = nil }
            return due.values.map(\.continuation)
        }
        for continuation in due { continuation.resume() }
    }

    func sleep(until deadline: ContinuousClock.Instant) async throws {
        let key = state.withLock { state -> Int in
            state.nextKey += 1
            return state.nextKey
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let resumeNow = state.withLock { state -> Bool in
                    if deadline <= state.now { return true }
                    if Task.isCancelled { return true }
                    state.sleepers[key] = Sleeper(deadline: deadline, continuation: continuation)
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let sleeper = state.withLock { $0.sleepers.removeValue(forKey: key) }
            sleeper?.continuation.resume(throwing: CancellationError())
        }
        try Task.checkCancellation()
    }
}
