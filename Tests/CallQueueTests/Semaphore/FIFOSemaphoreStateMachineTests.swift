import XCTest

@testable import CallQueue

/// The semaphore's rules, with strings standing in for continuations: no tasks, no locks, no clocks.
final class FIFOSemaphoreStateMachineTests: XCTestCase {
    typealias Machine = FIFOSemaphoreStateMachine<String>

    private func granted(_ grants: Machine.Grants) -> [String] {
        switch grants {
        case .none: return []
        case .one(let name): return [name]
        case .many(let names): return names
        }
    }

    private func releaseGrants(_ machine: inout Machine, weight: Int = 1) -> [String] {
        guard case .resume(let grants) = machine.release(weight: weight) else {
            XCTFail("unexpected over-release")
            return []
        }
        return granted(grants)
    }

    @discardableResult
    private func acquire(
        _ machine: inout Machine,
        _ name: String,
        ticket: UInt64,
        weight: Int = 1,
        cancelled: Bool = false,
        expired: Bool = false
    ) -> Machine.AcquireAction {
        machine.acquire(
            ticket: ticket,
            weight: weight,
            continuation: name,
            isCancelled: cancelled,
            isExpired: expired
        )
    }

    func testFreePermitsAreGrantedAtOnceAndQueueWhenTaken() {
        var machine = Machine(permits: 2)
        guard case .granted = acquire(&machine, "a", ticket: 0) else { return XCTFail("a should be granted") }
        guard case .granted = acquire(&machine, "b", ticket: 1) else { return XCTFail("b should be granted") }
        guard case .enqueued = acquire(&machine, "c", ticket: 2) else { return XCTFail("c should queue") }
        XCTAssertEqual(machine.available, 0)
        XCTAssertEqual(machine.waitingCount, 1)
        XCTAssertEqual(releaseGrants(&machine), ["c"])
        XCTAssertEqual(machine.available, 0, "the permit went straight to c")
        XCTAssertEqual(releaseGrants(&machine), [])
        XCTAssertEqual(machine.available, 1)
    }

    func testReleaseServesWaitersInArrivalOrder() {
        var machine = Machine(permits: 1)
        acquire(&machine, "holder", ticket: 0)
        for ticket in 1...100 { acquire(&machine, "w\(ticket)", ticket: UInt64(ticket)) }
        var order: [String] = []
        for _ in 1...100 { order += releaseGrants(&machine) }
        XCTAssertEqual(order, (1...100).map { "w\($0)" })
    }

    func testNoBargingWhileAnyoneWaits() {
        var machine = Machine(permits: 3)
        acquire(&machine, "holder", ticket: 0, weight: 2)
        guard case .enqueued = acquire(&machine, "big", ticket: 1, weight: 3) else { return XCTFail() }
        XCTAssertFalse(machine.tryAcquire(weight: 1), "one permit is free, but big is waiting")
        guard case .enqueued = acquire(&machine, "small", ticket: 2, weight: 1) else {
            return XCTFail("a newcomer must queue behind big, not take the free permit")
        }
        XCTAssertEqual(releaseGrants(&machine, weight: 2), ["big"])
        XCTAssertEqual(releaseGrants(&machine, weight: 3), ["small"])
    }

    func testReleaseGrantsEveryHeadWaiterThatFits() {
        var machine = Machine(permits: 4)
        acquire(&machine, "holder", ticket: 0, weight: 4)
        acquire(&machine, "a", ticket: 1, weight: 1)
        acquire(&machine, "b", ticket: 2, weight: 2)
        acquire(&machine, "c", ticket: 3, weight: 2)
        XCTAssertEqual(releaseGrants(&machine, weight: 4), ["a", "b"], "c does not fit in the one left")
        XCTAssertEqual(machine.available, 1)
        XCTAssertEqual(releaseGrants(&machine, weight: 1), ["c"])
    }

    func testRemovingTheBlockingHeadServesThoseBehindThatNowFit() {
        var machine = Machine(permits: 4)
        acquire(&machine, "holder", ticket: 0, weight: 3)
        acquire(&machine, "big", ticket: 1, weight: 4)
        acquire(&machine, "small", ticket: 2, weight: 1)
        acquire(&machine, "other", ticket: 3, weight: 1)
        guard let removal = machine.remove(ticket: 1) else { return XCTFail("big should be queued") }
        XCTAssertEqual(removal.continuation, "big")
        XCTAssertEqual(granted(removal.grants), ["small"], "one permit was free: small fits, other waits")
        XCTAssertEqual(machine.waitingCount, 1)
    }

    func testRemovingAWaiterBehindTheHeadGrantsNothing() {
        var machine = Machine(permits: 2)
        acquire(&machine, "holder", ticket: 0, weight: 1)
        acquire(&machine, "big", ticket: 1, weight: 2)
        acquire(&machine, "small", ticket: 2, weight: 1)
        guard let removal = machine.remove(ticket: 2) else { return XCTFail() }
        XCTAssertEqual(removal.continuation, "small")
        XCTAssertEqual(granted(removal.grants), [])
        XCTAssertNil(machine.remove(ticket: 2), "a waiter is removed once")
    }

    func testCancelledOrExpiredCallerFailsInsteadOfQueueing() {
        var machine = Machine(permits: 1)
        acquire(&machine, "holder", ticket: 0)
        guard case .failed(.cancelled) = acquire(&machine, "c", ticket: 1, cancelled: true) else { return XCTFail() }
        guard case .failed(.timedOut) = acquire(&machine, "t", ticket: 2, expired: true) else { return XCTFail() }
        XCTAssertEqual(machine.waitingCount, 0)
    }

    func testCancelledCallerIsGrantedWhenPermitsAreFree() {
        var machine = Machine(permits: 1)
        guard case .granted = acquire(&machine, "c", ticket: 0, cancelled: true, expired: true) else {
            return XCTFail("free permits are granted as a lock would")
        }
    }

    func testOverReleaseIsReported() {
        var machine = Machine(permits: 3)
        acquire(&machine, "holder", ticket: 0, weight: 2)
        guard case .overRelease(let held) = machine.release(weight: 3) else { return XCTFail() }
        XCTAssertEqual(held, 2)
        XCTAssertEqual(machine.available, 1, "a refused release changes nothing")
    }

    func testCloseFailsWaitersInOrderAndRefusesNewOnes() {
        var machine = Machine(permits: 1)
        acquire(&machine, "holder", ticket: 0)
        acquire(&machine, "a", ticket: 1)
        acquire(&machine, "b", ticket: 2)
        XCTAssertEqual(machine.close(), ["a", "b"])
        XCTAssertEqual(machine.close(), [], "closing twice does nothing more")
        guard case .failed(.closed) = acquire(&machine, "late", ticket: 3) else { return XCTFail() }
        XCTAssertFalse(machine.tryAcquire(weight: 1))
        XCTAssertEqual(releaseGrants(&machine), [], "the holder still releases normally")
        XCTAssertEqual(machine.available, 1)
    }

    func testPositionsCountOnlyLiveWaitersAhead() {
        var machine = Machine(permits: 1)
        acquire(&machine, "holder", ticket: 0)
        for ticket in 1...10 { acquire(&machine, "w\(ticket)", ticket: UInt64(ticket)) }
        XCTAssertEqual(machine.position(of: 1), 0)
        XCTAssertEqual(machine.position(of: 10), 9)
        _ = machine.remove(ticket: 4)
        _ = machine.remove(ticket: 5)
        XCTAssertEqual(machine.position(of: 10), 7)
        XCTAssertNil(machine.position(of: 4))
        _ = releaseGrants(&machine)
        XCTAssertEqual(machine.position(of: 2), 0)
        XCTAssertEqual(machine.position(of: 10), 6)
    }
}
