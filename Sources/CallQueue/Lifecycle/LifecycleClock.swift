/// Where the task lifecycle reads the time and waits: the continuous clock, or a clock a test moves by hand.
///
/// Every instant the lifecycle keeps (queued, started, finished) comes from ``now``, and the only wait it
/// makes on its own, the pause between position pushes, goes through ``sleep(until:)``. A test that
/// injects a manual clock therefore controls ETAs, elapsed times and push timing without sleeping.
public struct LifecycleClock: Sendable {
    private let readNow: @Sendable () -> ContinuousClock.Instant
    private let sleeper: @Sendable (ContinuousClock.Instant) async throws -> Void

    /// A clock made of a time source and a way to wait until an instant of it.
    ///
    /// - Parameters:
    ///   - now: The current instant.
    ///   - sleep: Suspends until `now()` reaches the instant, or throws `CancellationError` when the waiting
    ///     task is cancelled first.
    public init(
        now: @escaping @Sendable () -> ContinuousClock.Instant,
        sleep: @escaping @Sendable (ContinuousClock.Instant) async throws -> Void
    ) {
        readNow = now
        sleeper = sleep
    }

    /// The system's continuous clock: what a server uses.
    public static let continuous = LifecycleClock(
        now: { ContinuousClock.now },
        sleep: { try await Task.sleep(until: $0, clock: .continuous) }
    )

    /// The current instant.
    public var now: ContinuousClock.Instant { readNow() }

    /// Waits until ``now`` reaches `deadline`; throws `CancellationError` if cancelled first.
    public func sleep(until deadline: ContinuousClock.Instant) async throws {
        try await sleeper(deadline)
    }
}
