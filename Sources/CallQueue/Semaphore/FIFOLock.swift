/// A strictly first-in-first-out async lock: a ``FIFOSemaphore`` with one permit.
///
/// This is the primitive AUTOMATIC1111 calls `FIFOLock`, without its barging: a newcomer can never take
/// the lock between a release and the moment the longest waiter runs.
///
/// ```swift
/// let gpuLock = FIFOLock()
/// try await gpuLock.withLock { try await runModel() }
/// ```
public final class FIFOLock: Sendable {
    /// The one-permit semaphore underneath, for snapshots and positions.
    public let semaphore: FIFOSemaphore

    /// Creates an unlocked lock.
    public init() {
        semaphore = FIFOSemaphore(permits: 1)
    }

    /// Waits for the lock. See ``FIFOSemaphore/acquire(weight:deadline:)`` for cancellation, deadlines
    /// and closing.
    @inlinable
    public func acquire(deadline: ContinuousClock.Instant? = nil) async throws {
        try await semaphore.acquire(deadline: deadline)
    }

    /// Takes the lock if it is free and nobody waits.
    @inlinable
    public func tryAcquire() -> Bool {
        semaphore.tryAcquire()
    }

    /// Releases the lock, handing it to the longest waiter if there is one.
    ///
    /// - Precondition: the lock is held.
    @inlinable
    public func release() {
        semaphore.release()
    }

    /// Runs `body` holding the lock. See ``FIFOSemaphore/withPermit(weight:deadline:isolation:_:)``.
    @inlinable
    public func withLock<T>(
        deadline: ContinuousClock.Instant? = nil,
        isolation: isolated (any Actor)? = #isolation,
        _ body: () async throws -> T
    ) async throws -> T {
        try await semaphore.withPermit(deadline: deadline, body)
    }

    /// Fails every waiter and later acquire with ``CallQueueError/Code/closed``.
    public func close() {
        semaphore.close()
    }

    /// Whether the lock is held, and how many wait for it.
    public var snapshot: FIFOSemaphore.Snapshot { semaphore.snapshot }
}
