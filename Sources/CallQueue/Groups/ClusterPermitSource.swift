/// Where a cluster-wide group's slots come from: one line shared by several server processes (replicas),
/// served in arrival order across all of them, never more than the group's slots at once.
///
/// A ``CallQueue`` group is in-process unless ``CallQueue/Configuration/permitSources`` names a source for
/// it; then the same calls (`runGPUCall`, the `wrap…` adapters, `submit`, statuses, updates, cancel) wait for
/// grants from the source. Each replica keeps its own line in front: a call is admitted locally (queue size,
/// task id), then the queue asks the source for one cluster ticket per waiting call, one at a time per group
/// in local arrival order, so the cluster-wide order is exact. The source reports the ticket's grant, its
/// place in the cluster-wide line, and faults through the ``ClusterTicketEvents`` it is given.
///
/// `CallQueuePostgres` (package trait `Postgres`) provides `PostgresPermitSource`. A source of your own
/// must keep these rules:
/// - grants go to tickets in the order ``enqueue(_:)`` returned them, within a group;
/// - ``ClusterTicketEvents/granted(_:permit:)`` is called at most once per ticket with effect (repeats are ignored);
/// - ``leave(_:finished:)`` is idempotent and never blocks; the source retries it until it takes effect or the
///   ticket is gone.
public protocol ClusterPermitSource: Sendable {
    /// Takes a place at the back of the request's group's cluster-wide line.
    ///
    /// Called for one group one request at a time, in the order the calls were admitted on this replica.
    /// Returns once the place is taken; the grant may be reported through the request's events before or
    /// after it returns.
    ///
    /// - Throws: an error that fails the call (a ``CallQueueError`` whose code says what to do: the source
    ///   is unreachable, the group unknown to the cluster).
    func enqueue(_ request: ClusterRequest) async throws -> ClusterTicket

    /// Leaves the line (a cancelled call) or gives the slot back (a finished call). Never blocks: the source
    /// does the work in the background, retrying until it takes effect. `finished` is the call's final status,
    /// for the source to answer status queries from other replicas; `nil` for a call that never ran.
    func leave(_ ticket: ClusterTicket, finished: TaskStatus?)
}

/// One call's request for a cluster ticket.
public struct ClusterRequest: Sendable {
    /// The group, as declared in ``CallQueue/Configuration/groups``.
    public let group: ConcurrencyGroupID
    /// The call's task id; `nil` for an untracked call
    /// (``CallQueue/runQueued(group:weight:fairness:deadline:isolation:_:)``).
    public let taskID: TaskID?
    /// Where the source reports the ticket's grant, position and faults.
    public let events: ClusterTicketEvents
}

/// A place in a cluster-wide line, as the permit source numbers it.
public struct ClusterTicket: Sendable, Hashable, CustomStringConvertible {
    /// The group.
    public let group: ConcurrencyGroupID
    /// The source's ticket number; a later number arrived later.
    public let id: Int64

    public init(group: ConcurrencyGroupID, id: Int64) {
        self.group = group
        self.id = id
    }

    public var description: String { "\(group)#\(id)" }
}

/// A grant from a cluster-wide group: which slot, and a fencing number.
///
/// The fencing number grows with every grant in the cluster: a resource that remembers the largest
/// number it has seen for a slot can refuse a holder whose lease has passed (a paused process that
/// resumes), which a lease alone cannot.
public struct ClusterPermit: Sendable, Hashable {
    /// The slot, `0..<slots`: with one slot per GPU worker, which worker to use.
    public let slot: Int
    /// The fencing number of this grant.
    public let fence: Int64

    public init(slot: Int, fence: Int64) {
        self.slot = slot
        self.fence = fence
    }
}

/// What a ``ClusterPermitSource`` reports about one ticket. Every method may be called from any thread,
/// never under a lock of the source's that the queue could wait on.
public final class ClusterTicketEvents: Sendable {
    private weak let scheduler: Scheduler?
    let group: ConcurrencyGroupID
    let localTicket: UInt64

    init(scheduler: Scheduler, group: ConcurrencyGroupID, localTicket: UInt64) {
        self.scheduler = scheduler
        self.group = group
        self.localTicket = localTicket
    }

    /// The ticket was granted: the call starts with this slot. A call that has left in the meantime gives the
    /// slot back at once (``ClusterPermitSource/leave(_:finished:)``).
    public func granted(_ ticket: ClusterTicket, permit: ClusterPermit) {
        scheduler?.clusterGranted(self, ticket: ticket, permit: permit)
    }

    /// The ticket's place in the cluster-wide line changed: `position` waiting calls are ahead of it,
    /// `queueSize` wait in all. `runTimeEstimate`, when the source knows it, is the group's typical run time
    /// across all replicas; the group's ETAs use it instead of this process's own figure.
    public func positionChanged(position: Int, queueSize: Int, runTimeEstimate: Duration? = nil) {
        scheduler?.clusterPositionChanged(
            self, position: max(0, position), queueSize: max(1, queueSize),
            runTimeEstimate: runTimeEstimate.map { min(max($0, .zero), .etaLimit) })
    }

    /// The ticket is lost (the replica's lease passed, its session was reaped): a waiting call fails with
    /// `error`; a running tracked call (a job, a `run…` call with a task) is cancelled and then fails with
    /// `error`. An untracked call (``CallQueue/runQueued(group:weight:fairness:deadline:isolation:_:)``) has no task to
    /// cancel and runs to its end.
    public func lost(_ error: CallQueueError) {
        scheduler?.clusterLost(self, error: error)
    }

    /// Another replica asked to cancel this call by its task id.
    public func cancelRequested() {
        scheduler?.clusterCancelRequested(self)
    }
}
