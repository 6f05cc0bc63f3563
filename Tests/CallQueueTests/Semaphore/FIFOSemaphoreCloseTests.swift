import XCTest

@testable import CallQueue

final class FIFOSemaphoreCloseTests: XCTestCase {
    func testCloseFailsWaitersAndLaterAcquiresButHoldersReleaseNormally() async throws {
        let semaphore = FIFOSemaphore(permits: 2)
        try await semaphore.acquire(weight: 2)
        var waiters: [Task<Void, any Error>] = []
        for index in 0..<10 {
            waiters.append(Task { try await semaphore.acquire() })
            await waitForWaiters(semaphore, index + 1)
        }
        semaphore.close()
        for waiter in waiters {
            await assertThrowsCallQueueError(.closed) { try await waiter.value }
        }
        await assertThrowsCallQueueError(.closed) { try await semaphore.acquire() }
        XCTAssertFalse(semaphore.tryAcquire())
        semaphore.release(weight: 2)
        XCTAssertEqual(semaphore.snapshot, .init(permits: 2, available: 2, waiting: 0, isClosed: true))
        await assertThrowsCallQueueError(.closed) { try await semaphore.acquire() }
        XCTAssertFalse(semaphore.tryAcquire(), "free permits are not granted once closed")
        semaphore.close()
    }

    /// close racing acquires and releases from many tasks: every acquire either succeeds (and releases) or
    /// throws closed or cancelled; nothing hangs and nothing traps.
    func testCloseRacingTraffic() async throws {
        for _ in 0..<stressIterations(200, minimum: 20) {
            let semaphore = FIFOSemaphore(permits: 2)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<50 {
                    group.addTask {
                        do {
                            try await semaphore.withPermit { await Task.yield() }
                        } catch let error as CallQueueError where error.code == .closed {
                        }
                    }
                }
                group.addTask { semaphore.close() }
                try await group.waitForAll()
            }
            XCTAssertEqual(semaphore.snapshot, .init(permits: 2, available: 2, waiting: 0, isClosed: true))
        }
    }
}
