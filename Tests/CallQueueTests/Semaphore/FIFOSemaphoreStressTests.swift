import CallQueueTestSupport
import XCTest

@testable import CallQueue

/// Many tasks at once, with random weights and cancellations: the limit holds, nothing leaks, nothing hangs.
final class FIFOSemaphoreStressTests: XCTestCase {
    private func hammer(permits: Int, tasks: Int, rounds: Int, maxWeight: Int, cancelEvery: Int) async throws {
        let semaphore = FIFOSemaphore(permits: permits)
        let holders = HolderCounter()
        let completed = HolderCounter()
        await withTaskGroup(of: Void.self) { group in
            for taskIndex in 0..<tasks {
                group.addTask {
                    for round in 0..<rounds {
                        let weight = 1 + (taskIndex + round) % maxWeight
                        let attempt = Task {
                            try await semaphore.withPermit(weight: weight) {
                                holders.enter(weight)
                                await Task.yield()
                                holders.leave(weight)
                            }
                        }
                        if (taskIndex * rounds + round) % cancelEvery == 0 { attempt.cancel() }
                        if (try? await attempt.value) != nil { completed.enter() }
                    }
                }
            }
        }
        XCTAssertLessThanOrEqual(holders.most, permits, "more permits held at once than exist")
        XCTAssertEqual(holders.current, 0)
        XCTAssertGreaterThan(completed.current, 0)
        XCTAssertEqual(semaphore.snapshot, .init(permits: permits, available: permits, waiting: 0, isClosed: false))
    }

    func testLimitOneHoldsUnderContention() async throws {
        try await hammer(
            permits: 1, tasks: 100, rounds: stressIterations(100, minimum: 20), maxWeight: 1, cancelEvery: 7)
    }

    func testLimitFourHoldsUnderContention() async throws {
        try await hammer(
            permits: 4, tasks: 100, rounds: stressIterations(100, minimum: 20), maxWeight: 1, cancelEvery: 5)
    }

    func testWeightedLimitHoldsUnderContention() async throws {
        try await hammer(
            permits: 6, tasks: 100, rounds: stressIterations(100, minimum: 20), maxWeight: 6, cancelEvery: 3)
    }

    /// Plain acquire/release from many tasks, mostly on the lock-free path: the count never drifts.
    func testFastPathNeverLosesAPermit() async throws {
        let semaphore = FIFOSemaphore(permits: 3)
        let holders = HolderCounter()
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    for _ in 0..<stressIterations(20_000, minimum: 2_000) {
                        if semaphore.tryAcquire() {
                            holders.enter()
                            holders.leave()
                            semaphore.release()
                        }
                        try? await semaphore.acquire()
                        holders.enter()
                        holders.leave()
                        semaphore.release()
                    }
                }
            }
        }
        XCTAssertLessThanOrEqual(holders.most, 3)
        XCTAssertEqual(semaphore.snapshot, .init(permits: 3, available: 3, waiting: 0, isClosed: false))
    }
}
