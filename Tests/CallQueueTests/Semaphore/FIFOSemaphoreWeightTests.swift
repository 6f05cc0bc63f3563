import XCTest

@testable import CallQueue

final class FIFOSemaphoreWeightTests: XCTestCase {
    func testEveryWeightFromOneToPermits() async throws {
        let semaphore = FIFOSemaphore(permits: 5)
        for weight in 1...5 {
            try await semaphore.acquire(weight: weight)
            XCTAssertEqual(semaphore.snapshot.available, 5 - weight)
            XCTAssertFalse(semaphore.tryAcquire(weight: 6 - weight), "one more than is free")
            semaphore.release(weight: weight)
            XCTAssertTrue(semaphore.tryAcquire(weight: weight))
            semaphore.release(weight: weight)
        }
    }

    /// A large head waiter blocks smaller ones behind it even when they would fit: no starvation.
    func testLargeHeadWaiterIsNotStarved() async throws {
        let semaphore = FIFOSemaphore(permits: 4)
        try await semaphore.acquire(weight: 3)
        let big = Task { try await semaphore.acquire(weight: 2) }
        await waitForWaiters(semaphore, 1)
        let small = Task { try await semaphore.acquire(weight: 1) }
        await waitForWaiters(semaphore, 2)
        XCTAssertFalse(semaphore.tryAcquire(weight: 1), "one permit is free but big is first in line")
        XCTAssertEqual(semaphore.snapshot.waiting, 2, "small waits behind big although it would fit")
        // Two free now: exactly enough for big, none left for small.
        semaphore.release(weight: 1)
        try await big.value
        XCTAssertEqual(semaphore.snapshot, .init(permits: 4, available: 0, waiting: 1, isClosed: false))
        semaphore.release(weight: 2)
        try await small.value
        semaphore.release(weight: 2)
        semaphore.release(weight: 1)
        XCTAssertEqual(semaphore.snapshot.available, 4)
    }

    /// Cancelling the blocking head wakes the waiters behind it that now fit, with no release.
    func testCancellingTheHeadWakesThoseBehindThatFit() async throws {
        let semaphore = FIFOSemaphore(permits: 4)
        try await semaphore.acquire(weight: 2)
        let big = Task { try await semaphore.acquire(weight: 4) }
        await waitForWaiters(semaphore, 1)
        let first = Task { try await semaphore.acquire(weight: 1) }
        await waitForWaiters(semaphore, 2)
        let second = Task { try await semaphore.acquire(weight: 1) }
        await waitForWaiters(semaphore, 3)
        let third = Task { try await semaphore.acquire(weight: 1) }
        await waitForWaiters(semaphore, 4)
        big.cancel()
        await assertThrowsCancellation { try await big.value }
        try await first.value
        try await second.value
        XCTAssertEqual(semaphore.snapshot.waiting, 1, "the third does not fit")
        semaphore.release(weight: 1)
        try await third.value
        semaphore.release(weight: 2)
        semaphore.release(weight: 1)
        semaphore.release(weight: 1)
        XCTAssertEqual(semaphore.snapshot.available, 4)
    }

    func testInvalidWeightsAreRejectedAtOnce() async throws {
        let semaphore = FIFOSemaphore(permits: 3)
        for weight in [0, -1, 4, Int.max, Int.min] {
            await assertThrowsCallQueueError(.invalidArgument) { try await semaphore.acquire(weight: weight) }
            await assertThrowsCallQueueError(.invalidArgument) {
                try await semaphore.withPermit(weight: weight) { XCTFail("the body must not run") }
            }
        }
        // Also while busy: the error comes at once instead of a wait that could never end.
        try await semaphore.acquire(weight: 3)
        await assertThrowsCallQueueError(.invalidArgument) { try await semaphore.acquire(weight: 4) }
        XCTAssertEqual(semaphore.snapshot.waiting, 0)
        semaphore.release(weight: 3)
    }
}
