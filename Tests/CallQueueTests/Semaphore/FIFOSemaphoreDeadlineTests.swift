import CallQueueTestSupport
import XCTest

@testable import CallQueue

final class FIFOSemaphoreDeadlineTests: XCTestCase {
    /// A waiter whose deadline passes throws timedOut and leaves the queue; the others keep their order.
    /// The test waits for the outcome, never for a fixed time.
    func testExpiredWaiterLeavesAndOthersKeepOrder() async throws {
        let semaphore = FIFOSemaphore(permits: 1)
        try await semaphore.acquire()
        let order = Recorder<String>()
        let first = Task {
            try await semaphore.acquire()
            order.append("first")
            semaphore.release()
        }
        await waitForWaiters(semaphore, 1)
        let hasty = Task {
            try await semaphore.acquire(deadline: .now + .milliseconds(20))
            order.append("hasty")
            semaphore.release()
        }
        await waitForWaiters(semaphore, 2)
        let last = Task {
            try await semaphore.acquire()
            order.append("last")
            semaphore.release()
        }
        await waitForWaiters(semaphore, 3)
        await assertThrowsCallQueueError(.timedOut) { try await hasty.value }
        XCTAssertEqual(semaphore.snapshot.waiting, 2)
        semaphore.release()
        try await first.value
        try await last.value
        XCTAssertEqual(order.elements, ["first", "last"])
    }

    func testPastDeadlineFailsAtOnceWhenBusyAndSucceedsWhenFree() async throws {
        let semaphore = FIFOSemaphore(permits: 1)
        try await semaphore.acquire(deadline: .now - .seconds(1))
        await assertThrowsCallQueueError(.timedOut) {
            try await semaphore.acquire(deadline: .now - .seconds(1))
        }
        XCTAssertEqual(semaphore.snapshot.waiting, 0)
        semaphore.release()
    }

    /// The head of a weighted queue times out: those behind it that fit are served without a release.
    func testTimedOutHeadWakesThoseBehindThatFit() async throws {
        let semaphore = FIFOSemaphore(permits: 4)
        try await semaphore.acquire(weight: 3)
        let big = Task { try await semaphore.acquire(weight: 4, deadline: .now + .milliseconds(20)) }
        await waitForWaiters(semaphore, 1)
        let small = Task {
            try await semaphore.acquire(weight: 1)
            semaphore.release(weight: 1)
        }
        await waitForWaiters(semaphore, 2)
        await assertThrowsCallQueueError(.timedOut) { try await big.value }
        try await small.value
        semaphore.release(weight: 3)
        XCTAssertEqual(semaphore.snapshot.available, 4)
    }

    /// The deadline firing while a release hands over the permit: either outcome is fine, nothing leaks.
    func testDeadlineRacingRelease() async throws {
        let semaphore = FIFOSemaphore(permits: 1)
        for _ in 0..<stressIterations(2_000, minimum: 200) {
            try await semaphore.acquire()
            let finished = HolderCounter()
            let waiter = Task {
                defer { finished.enter() }
                try await semaphore.acquire(deadline: .now + .microseconds(50))
                semaphore.release()
            }
            // Release while it waits, or after it timed out: the two races this test is about.
            await waitUntil { semaphore.snapshot.waiting == 1 || finished.current == 1 }
            semaphore.release()
            do {
                try await waiter.value
            } catch let error as CallQueueError {
                XCTAssertEqual(error.code, .timedOut)
            }
            XCTAssertEqual(semaphore.snapshot, .init(permits: 1, available: 1, waiting: 0, isClosed: false))
        }
    }
}
