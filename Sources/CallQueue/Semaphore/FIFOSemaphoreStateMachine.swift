/// The rules of a ``FIFOSemaphore`` as a value: permits, the waiter queue, and closing.
///
/// Every mutating method returns what the owner must do next (resume these continuations, fail that one);
/// the owner does it after dropping its lock. Nothing here suspends, locks or reads a clock, so the rules
/// can be tested with plain values standing in for continuations.
struct FIFOSemaphoreStateMachine<Continuation> {
    /// Why an acquire did not get its permits.
    enum Failure: Equatable, Sendable {
        case cancelled
        case timedOut
        case closed
    }

    enum AcquireAction {
        /// The permits were free and nobody was waiting: they are the caller's now.
        case granted
        /// The caller is queued; whoever removes it resumes its continuation.
        case enqueued
        /// The caller is not queued and must fail with this reason.
        case failed(Failure)
    }

    /// Continuations to resume because they were just granted their permits.
    enum Grants {
        case none
        case one(Continuation)
        case many([Continuation])
    }

    enum ReleaseAction {
        case resume(Grants)
        /// More permits were released than are held: a programming error in the caller.
        case overRelease(held: Int)
    }

    struct Removal {
        /// The removed waiter's continuation, to be failed.
        var continuation: Continuation
        /// Waiters behind it that fit now that it no longer blocks them.
        var grants: Grants
    }

    let permits: Int
    /// Permits nobody holds.
    var available: Int
    private(set) var isClosed = false
    private(set) var queue = WaiterQueue<Continuation>()

    init(permits: Int) {
        self.permits = permits
        self.available = permits
    }

    var waitingCount: Int { queue.count }

    /// An acquire that may wait. It is granted at once when nobody waits and the permits are free (even
    /// if the caller is cancelled or past its deadline, as a lock would be); otherwise a cancelled or
    /// expired caller fails instead of joining the queue.
    mutating func acquire(
        ticket: UInt64,
        weight: Int,
        continuation: Continuation,
        isCancelled: Bool,
        isExpired: Bool
    ) -> AcquireAction {
        if isClosed { return .failed(.closed) }
        if queue.isEmpty && available >= weight {
            available -= weight
            return .granted
        }
        if isCancelled { return .failed(.cancelled) }
        if isExpired { return .failed(.timedOut) }
        queue.append(ticket: ticket, weight: weight, continuation: continuation)
        return .enqueued
    }

    /// An acquire that never waits and never overtakes a waiter.
    mutating func tryAcquire(weight: Int) -> Bool {
        guard !isClosed, queue.isEmpty, available >= weight else { return false }
        available -= weight
        return true
    }

    /// Returns permits; they go straight to the waiters at the head that now fit (no barging).
    mutating func release(weight: Int) -> ReleaseAction {
        let held = permits - available
        guard weight <= held else { return .overRelease(held: held) }
        available += weight
        return .resume(grantFitting())
    }

    /// Takes a waiter out of the queue (cancellation or timeout); `nil` when it is not queued, because it
    /// was granted, already removed, or not stored yet.
    mutating func remove(ticket: UInt64) -> Removal? {
        guard let (waiter, wasFirst) = queue.remove(ticket: ticket) else { return nil }
        return Removal(continuation: waiter.continuation, grants: wasFirst ? grantFitting() : .none)
    }

    /// Refuses all further acquires and returns every waiter, in queue order, to be failed.
    mutating func close() -> [Continuation] {
        guard !isClosed else { return [] }
        isClosed = true
        return queue.removeAll().map(\.continuation)
    }

    func position(of ticket: UInt64) -> Int? {
        queue.position(of: ticket)
    }

    /// Serves the head while it fits. A head that does not fit blocks everyone behind it, so a large
    /// request is never starved by small ones.
    private mutating func grantFitting() -> Grants {
        guard let head = queue.first, head.weight <= available else { return .none }
        available -= head.weight
        let first = queue.removeFirst().continuation
        guard let next = queue.first, next.weight <= available else { return .one(first) }
        var granted = [first]
        while let next = queue.first, next.weight <= available {
            available -= next.weight
            granted.append(queue.removeFirst().continuation)
        }
        return .many(granted)
    }
}

extension FIFOSemaphoreStateMachine: Sendable where Continuation: Sendable {}
