import CallQueueTestSupport
import XCTest

@testable import CallQueue

final class FIFOSemaphoreCancellationTests: XCTestCase {
    /// Cancelling a waiter throws at once: the holder never releases before the waiter has thrown.
    func testCancelledWaiterThrowsWithoutARelease() async throws {
        let semaphore = FIFOSemaphore(permits: 1)
        try await semaphore.acquire()
        let waiter = Task { try await semaphore.acquire() }
        await waitForWaiters(semaphore, 1)
        waiter.cancel()
        await assertThrowsCancellation { try await waiter.value }
        XCTAssertEqual(semaphore.snapshot, .init(permits: 1, available: 0, waiting: 0, isClosed: false))
        semaphore.release()
        XCTAssertTrue(semaphore.tryAcquire(), "the cancelled waiter took nothing")
        semaphore.release()
    }

    /// A task already cancelled before it calls acquire, with the permit taken, throws without queueing.
    func testCancelBeforeTheWaiterIsStored() async throws {
        let semaphore = FIFOSemaphore(permits: 1)
        try await semaphore.acquire()
        for _ in 0..<stressIterations(10_000, minimum: 1_000) {
            let gate = Gate()
            let waiter = Task {
                await gate.wait()
                try await semaphore.acquire()
            }
            waiter.cancel()
            gate.open()
            await assertThrowsCancellation { try await waiter.value }
        }
        XCTAssertEqual(semaphore.snapshot.waiting, 0)
        semaphore.release()
        XCTAssertEqual(semaphore.snapshot.available, 1)
    }

    /// Cancel racing the start of acquire: whichever comes first, the waiter throws and nothing is left queued.
    func testCancelRacingEnqueue() async throws {
        let semaphore = FIFOSemaphore(permits: 1)
        try await semaphore.acquire()
        for _ in 0..<stressIterations(10_000, minimum: 1_000) {
            let waiter = Task.detached { try await semaphore.acquire() }
            waiter.cancel()
            await assertThrowsCancellation { try await waiter.value }
        }
        XCTAssertEqual(semaphore.snapshot.waiting, 0)
        semaphore.release()
        XCTAssertEqual(semaphore.snapshot.available, 1)
    }

    /// Release racing cancel on the same waiter (the race that resumes a continuation twice in other
    /// semaphores): exactly one of the two wins, and the permit is never lost or granted twice.
    func testReleaseRacingCancel() async throws {
        let semaphore = FIFOSemaphore(permits: 1)
        var granted = 0
        var cancelled = 0
        for _ in 0..<stressIterations(10_000, minimum: 1_000) {
            try await semaphore.acquire()
            let waiter = Task {
                try await semaphore.acquire()
                semaphore.release()
            }
            await waitForWaiters(semaphore, 1)
            let canceller = Task.detached { waiter.cancel() }
            semaphore.release()
            await canceller.value
            do {
                try await waiter.value
                granted += 1
            } catch is CancellationError {
                cancelled += 1
            }
            XCTAssertEqual(semaphore.snapshot, .init(permits: 1, available: 1, waiting: 0, isClosed: false))
        }
        XCTAssertEqual(granted + cancelled, stressIterations(10_000, minimum: 1_000))
    }

    /// Cancelled after the permit was handed over: acquire returns normally and the owner must release.
    func testCancelAfterGrantLeavesThePermitWithTheOwner() async throws {
        let semaphore = FIFOSemaphore(permits: 1)
        try await semaphore.acquire()
        let resumed = Gate()
        let mayRelease = Gate()
        let waiter = Task {
            try await semaphore.acquire()
            resumed.open()
            await mayRelease.wait()
            XCTAssertTrue(Task.isCancelled)
            semaphore.release()
        }
        await waitForWaiters(semaphore, 1)
        semaphore.release()  // hands the permit to the waiter
        await resumed.wait()
        waiter.cancel()
        XCTAssertEqual(semaphore.snapshot.available, 0, "the cancelled owner still holds the permit")
        mayRelease.open()
        try await waiter.value
        XCTAssertEqual(semaphore.snapshot.available, 1)
    }

    /// Cancelling the middle of the queue keeps the order of the rest.
    func testCancellingSomeWaitersKeepsTheOthersInOrder() async throws {
        let semaphore = FIFOSemaphore(permits: 1)
        try await semaphore.acquire()
        let order = Recorder<Int>()
        var tasks: [Task<Void, any Error>] = []
        for index in 0..<100 {
            tasks.append(
                Task {
                    try await semaphore.acquire()
                    order.append(index)
                    semaphore.release()
                })
            await waitForWaiters(semaphore, index + 1)
        }
        for index in stride(from: 0, to: 100, by: 3) { tasks[index].cancel() }
        await waitForWaiters(semaphore, 66)
        semaphore.release()
        for (index, task) in tasks.enumerated() {
            if index % 3 == 0 {
                await assertThrowsCancellation { try await task.value }
            } else {
                try await task.value
            }
        }
        XCTAssertEqual(order.elements, (0..<100).filter { $0 % 3 != 0 })
    }

    /// withPermit releases when the body throws, and when the task is cancelled while the body runs.
    func testWithPermitReleasesOnErrorAndCancellation() async throws {
        struct BodyFailed: Error {}
        let semaphore = FIFOSemaphore(permits: 1)
        do {
            try await semaphore.withPermit { throw BodyFailed() }
            XCTFail("the body's error should propagate")
        } catch is BodyFailed {}
        XCTAssertEqual(semaphore.snapshot.available, 1)

        let started = Gate()
        let finish = Gate()
        let task = Task {
            try await semaphore.withPermit {
                started.open()
                await finish.wait()
                try Task.checkCancellation()
            }
        }
        await started.wait()
        task.cancel()
        XCTAssertEqual(semaphore.snapshot.available, 0, "a cancelled body keeps its permit until it returns")
        finish.open()
        await assertThrowsCancellation { try await task.value }
        XCTAssertEqual(semaphore.snapshot.available, 1)
    }
}
