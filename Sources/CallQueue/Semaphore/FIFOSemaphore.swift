import Synchronization

/// A strictly first-in-first-out async semaphore with weighted permits, cancellation, deadlines and close.
///
/// Waiters are served in the order they queued, with no exceptions: a release hands its permits straight
/// to the waiter at the head of the queue, and neither ``acquire(weight:deadline:)`` nor
/// ``tryAcquire(weight:)`` can take free permits while anyone is waiting.
///
/// ```swift
/// let gpu = FIFOSemaphore(permits: 1)
/// let image = try await gpu.withPermit {
///     try await model.generate(prompt)
/// }
/// ```
///
/// - Weights: an acquire may ask for several permits (say, MiB of VRAM against a budget). A head waiter
///   that does not fit blocks those behind it until it does, so large requests are never starved.
/// - Cancellation: cancelling a waiting task makes its acquire throw `CancellationError` at once and takes
///   it out of the queue in O(1); no permit is consumed. A task cancelled after it was granted its permits
///   holds them and must release them (``withPermit(weight:deadline:isolation:_:)`` does).
/// - Deadlines: a waiter still queued at its deadline throws ``CallQueueError`` with code
///   ``CallQueueError/Code/timedOut`` and leaves the queue.
/// - Closing: ``close()`` fails every waiter and every later acquire with ``CallQueueError/Code/closed``;
///   permits already held are released as usual.
///
/// The uncontended path is a compare-and-swap on one atomic word and never takes the lock, allocates or
/// suspends; the lock is taken only while anyone waits.
public final class FIFOSemaphore: Sendable {
    /// The number of permits the semaphore was created with.
    public let permits: Int

    /// `available << stateShift | closedBit | queuedBit`. While neither flag is set, the word alone is the
    /// truth and the fast paths may change it with a compare-and-swap. Once a flag is set, only code
    /// holding `machine`'s lock changes it (see `freeze` and `publish`).
    @usableFromInline let word: Atomic<Int>
    @usableFromInline static var queuedBit: Int { 1 }
    @usableFromInline static var closedBit: Int { 2 }
    @usableFromInline static var flagBits: Int { 3 }
    @usableFromInline static var stateShift: Int { 2 }

    let machine: LockedState<FIFOSemaphoreStateMachine<Waiter>>
    private let nextTicket = Atomic<UInt64>(0)

    /// A waiter's place in the queue, known before it queues so that cancellation can find it.
    @usableFromInline
    struct Ticket: Hashable, Sendable {
        let rawValue: UInt64
    }

    /// Creates a semaphore with `permits` permits, all free.
    ///
    /// - Precondition: `permits` is at least 1 (and below `Int.max >> 2`).
    public init(permits: Int) {
        if permits < 1 || permits > Int.max >> Self.stateShift {
            fatalError("FIFOSemaphore(permits: \(permits)): permits must be between 1 and \(Int.max >> 2)")
        }
        self.permits = permits
        word = Atomic(permits << Self.stateShift)
        machine = LockedState(FIFOSemaphoreStateMachine(permits: permits))
    }

    // MARK: Acquire

    /// Waits until `weight` permits are free and it is this caller's turn, then takes them.
    ///
    /// Returns at once when nobody is waiting and the permits are free, even in a cancelled task or past
    /// the deadline, as a lock would.
    ///
    /// - Parameters:
    ///   - weight: How many permits to take, from 1 to ``permits``.
    ///   - deadline: When to give up waiting; `nil` waits as long as it takes.
    /// - Throws: `CancellationError` when the task is cancelled while waiting; ``CallQueueError`` with
    ///   ``CallQueueError/Code/timedOut`` at the deadline, ``CallQueueError/Code/closed`` once the
    ///   semaphore is closed, ``CallQueueError/Code/invalidArgument`` for a weight outside `1...permits`.
    ///   When it throws, the caller holds nothing.
    @inlinable @inline(__always)
    public func acquire(
        weight: Int = 1,
        deadline: ContinuousClock.Instant? = nil
    ) async throws {
        if takeIfFree(weight: weight) { return }
        try await acquireQueued(weight: weight, deadline: deadline.map(Deadline.init), ticket: nil)
    }

    /// Waits until `weight` permits are free and it is this caller's turn, then takes them; with no
    /// deadline. The same as ``acquire(weight:deadline:)`` with `deadline: nil`, without materializing a
    /// clock instant on the lock-free path.
    @inlinable @inline(__always)
    public func acquire(weight: Int = 1) async throws {
        if takeIfFree(weight: weight) { return }
        try await acquireQueued(weight: weight, deadline: nil, ticket: nil)
    }

    /// Takes `weight` permits if they are free and nobody is waiting; never waits, never overtakes a waiter.
    ///
    /// - Precondition: `weight` is between 1 and ``permits``.
    /// - Returns: Whether the permits were taken. Always `false` once the semaphore is closed.
    @inlinable
    public func tryAcquire(weight: Int = 1) -> Bool {
        if takeIfFree(weight: weight) { return true }
        return tryAcquireSlowly(weight: weight)
    }

    /// The lock-free path: succeeds only for a valid weight, with no waiter queued and enough permits free.
    @inlinable
    func takeIfFree(weight: Int) -> Bool {
        guard weight >= 1 && weight <= permits else { return false }
        var current = word.load(ordering: .relaxed)
        while current & Self.flagBits == 0 && current >> Self.stateShift >= weight {
            let (exchanged, original) = word.compareExchange(
                expected: current,
                desired: current - weight << Self.stateShift,
                successOrdering: .acquiring,
                failureOrdering: .relaxed
            )
            if exchanged { return true }
            current = original
        }
        return false
    }

    @usableFromInline
    func tryAcquireSlowly(weight: Int) -> Bool {
        guard weight >= 1 && weight <= permits else {
            fatalError("FIFOSemaphore.tryAcquire(weight: \(weight)): weight must be between 1 and \(permits)")
        }
        let current = word.load(ordering: .relaxed)
        // No flag set: the fast path saw the word as it is, and there are not enough permits.
        guard current & Self.flagBits == Self.queuedBit else { return false }
        // A waiter is queued, or another thread is half-way through an acquire: ask under the lock.
        return locked { $0.tryAcquire(weight: weight) }
    }

    /// The slow path of ``acquire(weight:deadline:)``: queue and wait. `ticket` is a place reserved with
    /// ``makeTicket()`` (used once) when the caller wants to ask for its ``position(of:)``; `nil` takes one.
    ///
    /// One async frame holding a few words: every byte here is held by each waiting task. Holding the
    /// deadline's timer here (even as `nil`), or the deadline unboxed, made each waiting task spill past its
    /// first allocation: about 1.1 KB more per waiter, measured by the W4 benchmark. So the timer is parked
    /// with the waiter and the deadline boxed.
    @usableFromInline
    func acquireQueued(weight: Int, deadline: Deadline?, ticket: Ticket?) async throws {
        try validate(weight: weight)
        let request = WaitRequest(ticket: ticket ?? makeTicket(), weight: weight, deadline: deadline)
        try await withTaskCancellationHandler {
            try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<Void, any Error>) in
                enqueue(continuation, for: request)
            }
        } onCancel: {
            self.remove(request.ticket, because: .cancelled)
        }
    }

    /// An acquire with a ticket reserved by ``makeTicket()``, so that the caller can ask for its position
    /// while it waits. Otherwise the same as ``acquire(weight:deadline:)``.
    func acquire(weight: Int, deadline: ContinuousClock.Instant?, ticket: Ticket) async throws {
        if takeIfFree(weight: weight) { return }
        try await acquireQueued(weight: weight, deadline: deadline.map(Deadline.init), ticket: ticket)
    }

    /// Throws ``CallQueueError/Code/invalidArgument`` for a weight outside `1...permits`.
    func validate(weight: Int) throws {
        guard weight >= 1 && weight <= permits else {
            throw CallQueueError(
                .invalidArgument,
                "acquire(weight: \(weight)) on a semaphore of \(permits) permits: "
                    + "the weight must be between 1 and \(permits)"
            )
        }
    }

    /// Reserves a place in the queue's numbering before queueing, so the caller can ask for its
    /// ``position(of:)`` once queued.
    func makeTicket() -> Ticket {
        Ticket(rawValue: nextTicket.wrappingAdd(1, ordering: .relaxed).oldValue)
    }

    // MARK: Release

    /// Returns `weight` permits. If anyone waits, they go straight to the waiters at the head that fit.
    ///
    /// - Precondition: `weight` is between 1 and ``permits``, and no more than is held. Releasing more than
    ///   is held is a programming error and stops the process with a message saying so.
    @inlinable
    public func release(weight: Int = 1) {
        if weight >= 1 && weight <= permits {
            var current = word.load(ordering: .relaxed)
            while current & Self.flagBits == 0 && current >> Self.stateShift + weight <= permits {
                let (exchanged, original) = word.compareExchange(
                    expected: current,
                    desired: current + weight << Self.stateShift,
                    successOrdering: .releasing,
                    failureOrdering: .relaxed
                )
                if exchanged { return }
                current = original
            }
        }
        releaseSlowly(weight: weight)
    }

    @usableFromInline
    func releaseSlowly(weight: Int) {
        guard weight >= 1 && weight <= permits else {
            fatalError("FIFOSemaphore.release(weight: \(weight)): weight must be between 1 and \(permits)")
        }
        switch locked({ $0.release(weight: weight) }) {
        case .overRelease(let held):
            fatalError(
                "FIFOSemaphore.release(weight: \(weight)): releasing more permits than are held "
                    + "(\(held) of \(permits) held)"
            )
        case .resume(let grants):
            resume(grants)
        }
    }

    // MARK: Scoped use

    /// Runs `body` holding `weight` permits, and releases them when it returns or throws.
    ///
    /// Cancellation while waiting throws `CancellationError` without running `body`; cancellation while
    /// `body` runs is `body`'s to observe, and the permits stay held until it returns.
    ///
    /// - Parameters:
    ///   - weight: How many permits to hold, from 1 to ``permits``.
    ///   - deadline: When to give up waiting; `nil` waits as long as it takes.
    ///   - isolation: The actor `body` runs on; the caller's by default.
    ///   - body: The work to do while holding the permits.
    /// - Returns: What `body` returns.
    /// - Throws: What ``acquire(weight:deadline:)`` throws, or what `body` throws.
    @inlinable
    public func withPermit<T>(
        weight: Int = 1,
        deadline: ContinuousClock.Instant? = nil,
        isolation: isolated (any Actor)? = #isolation,
        _ body: () async throws -> T
    ) async throws -> T {
        try await acquire(weight: weight, deadline: deadline)
        defer { release(weight: weight) }
        return try await body()
    }

    // MARK: Close

    /// Fails every waiter with ``CallQueueError/Code/closed`` and refuses every later acquire the same way.
    ///
    /// Permits already held stay valid and are released as usual. Closing twice does nothing more.
    public func close() {
        let waiters = locked { $0.close() }
        for waiter in waiters {
            waiter.fail(error(for: .closed))
        }
    }

    // MARK: Observing

    /// A consistent view of the semaphore at one instant.
    public struct Snapshot: Sendable, Hashable, CustomStringConvertible {
        /// The number of permits the semaphore was created with.
        public var permits: Int
        /// Permits nobody holds. While anyone waits these are too few for the head waiter.
        public var available: Int
        /// Waiters in the queue.
        public var waiting: Int
        /// Whether ``FIFOSemaphore/close()`` was called.
        public var isClosed: Bool

        /// Permits held by callers.
        public var held: Int { permits - available }

        public var description: String {
            "\(held)/\(permits) held, \(waiting) waiting\(isClosed ? ", closed" : "")"
        }
    }

    /// The permits, how many are free, and how many waiters are queued.
    public var snapshot: Snapshot {
        machine.withLock { machine in
            // Under the lock the word is either free-running (no waiters) or mirrors the machine.
            let current = word.load(ordering: .acquiring)
            return Snapshot(
                permits: permits,
                available: current >> Self.stateShift,
                waiting: machine.waitingCount,
                isClosed: current & Self.closedBit != 0
            )
        }
    }

    /// How many live waiters stand ahead of this ticket (0 at the head); `nil` when it is not queued.
    /// O(log n) in the number of waiters.
    func position(of ticket: Ticket) -> Int? {
        machine.withLock { $0.position(of: ticket.rawValue) }
    }

}
