import CallQueueTestSupport
import XCTest

@testable import CallQueue

final class FIFOSemaphoreOrderTests: XCTestCase {
    /// 100,000 waiters, each queued before the next starts: they acquire in exactly that order.
    func testHundredThousandWaitersAcquireInEnqueueOrder() async throws {
        let count = 100_000
        let semaphore = FIFOSemaphore(permits: 1)
        try await semaphore.acquire()
        let order = Recorder<Int>()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<count {
                group.addTask {
                    try await semaphore.acquire()
                    order.append(index)
                    semaphore.release()
                }
                await waitForWaiters(semaphore, index + 1)
            }
            semaphore.release()
            try await group.waitForAll()
        }
        let acquired = order.elements
        XCTAssertEqual(acquired.count, count)
        let violations = zip(acquired, acquired.dropFirst()).filter { $0 >= $1 }.count
        XCTAssertEqual(violations, 0)
        XCTAssertEqual(semaphore.snapshot, .init(permits: 1, available: 1, waiting: 0, isClosed: false))
    }

    /// A release hands the permit to the queued waiter; a newcomer's tryAcquire racing that release never
    /// wins (A1111's lock lets it through in 2000 of 2000 runs).
    func testTryAcquireNeverOvertakesAWaiterDuringHandOff() async throws {
        let semaphore = FIFOSemaphore(permits: 1)
        for _ in 0..<stressIterations(10_000, minimum: 1_000) {
            try await semaphore.acquire()
            let checked = Gate()
            let waiter = Task {
                try await semaphore.acquire()
                await checked.wait()  // hold the permit until the newcomer has tried
                semaphore.release()
            }
            await waitForWaiters(semaphore, 1)
            async let newcomer = Task.detached { semaphore.tryAcquire() }.value
            semaphore.release()
            let newcomerWon = await newcomer
            XCTAssertFalse(newcomerWon, "tryAcquire took the permit from a queued waiter")
            if newcomerWon { semaphore.release() }
            checked.open()
            try await waiter.value
        }
        XCTAssertEqual(semaphore.snapshot.available, 1)
    }

    /// Two queued waiters and a newcomer acquire that races the release: the order stays W1, W2, newcomer.
    func testAcquireByNewcomerQueuesBehindWaiters() async throws {
        let semaphore = FIFOSemaphore(permits: 1)
        for _ in 0..<stressIterations(10_000, minimum: 1_000) {
            let order = Recorder<String>()
            try await semaphore.acquire()
            let first = Task {
                try await semaphore.acquire()
                order.append("w1")
                semaphore.release()
            }
            await waitForWaiters(semaphore, 1)
            let second = Task {
                try await semaphore.acquire()
                order.append("w2")
                semaphore.release()
            }
            await waitForWaiters(semaphore, 2)
            let newcomer = Task.detached {
                try await semaphore.acquire()
                order.append("newcomer")
                semaphore.release()
            }
            semaphore.release()
            try await first.value
            try await second.value
            try await newcomer.value
            let recorded = order.elements
            XCTAssertEqual(Array(recorded.filter { $0 != "newcomer" }), ["w1", "w2"])
            XCTAssertEqual(recorded.count, 3)
            // The newcomer may have queued before the release (last) or found the lock free after both.
            XCTAssertEqual(recorded.last, "newcomer", "the newcomer overtook a queued waiter: \(recorded)")
        }
    }

    func testPositionsFollowTheQueue() async throws {
        let semaphore = FIFOSemaphore(permits: 1)
        try await semaphore.acquire()
        let tickets = (0..<5).map { _ in semaphore.makeTicket() }
        var tasks: [Task<Void, any Error>] = []
        for (index, ticket) in tickets.enumerated() {
            tasks.append(
                Task {
                    try await semaphore.acquireQueued(weight: 1, deadline: nil, ticket: ticket)
                    semaphore.release()
                })
            await waitForWaiters(semaphore, index + 1)
        }
        XCTAssertEqual(tickets.map { semaphore.position(of: $0) }, [0, 1, 2, 3, 4])
        tasks[1].cancel()
        await waitForWaiters(semaphore, 4)
        XCTAssertEqual(tickets.map { semaphore.position(of: $0) }, [0, nil, 1, 2, 3])
        semaphore.release()
        for task in tasks { _ = try? await task.value }
        XCTAssertEqual(tickets.map { semaphore.position(of: $0) }, [nil, nil, nil, nil, nil])
    }
}
