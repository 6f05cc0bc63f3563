/// One concurrency group at run time, inside the lifecycle's state: its line of waiting calls, what its
/// running calls hold, the numbering of its slots, its run-time estimate, and the readers waiting for its
/// positions to move.
///
/// A class, guarded by the lifecycle's lock like the rest of its state: every call reads and changes its
/// group several times, and a struct this size was copied (a dozen retains) at each read and written back at
/// each change.
final class GroupState: @unchecked Sendable {
    let id: ConcurrencyGroupID
    /// The most calls running at once; `nil`: unlimited, or a group of hand-tracked tasks (never served).
    let limit: Int?
    let budget: Int?
    let maxQueueSize: Int?
    /// Declared in the configuration; an undeclared group is freed when idle.
    let isDeclared: Bool
    /// Whether the lifecycle grants this group's slots itself (a ``CallQueue`` group), or only records
    /// what a ``TaskLifecycle`` user reports.
    let isScheduled: Bool
    /// Where a cluster-wide group's grants come from; `nil`: granted here, from ``limit`` and ``budget``.
    let cluster: (any ClusterPermitSource)?

    /// Waiting calls in the group's order (arrival, or fair share); each waiter's weight is what it takes of
    /// ``budget`` (0 without one).
    var line: GroupLine<LineEntry>
    /// The group's fair share, when it has one.
    let fairShare: FairShare?
    /// Running calls: ticket to start instant (for the ETA's "until a slot frees").
    var running: [UInt64: ContinuousClock.Instant] = [:]
    var budgetUsed = 0
    var slots = SlotNumbers()
    var estimator: RunTimeEstimator
    /// Advances by one for each call that leaves the line: no position drops by more than this advances.
    /// In a cluster-wide group it advances once for each position report instead.
    var moved: UInt64 = 0
    /// Subscriptions of waiting tasks parked until positions move.
    var parkedReaders: [ObjectIdentifier: UpdateSubscription] = [:]
    /// The same readers by the ``moved`` count at which each is next due.
    var wakeups = ReaderWakeups()
    /// Readers woken so far because positions moved (a measure of what the line's moves cost its readers).
    var positionWakeups = 0
    var flushPending = false
    /// Live tasks of this group, in line or not (a cancelled one has left the line before it finishes).
    var liveTasks = 0
    /// Tickets of each batcher's members in arrival order; tickets that left the line are skipped and dropped
    /// when a batch forms.
    var batchMembers: [ObjectIdentifier: [UInt64]] = [:]
    /// Batches that hold a slot of this group and have not started their body yet, by batch.
    var formingBatches: [ObjectIdentifier: FormingBatch] = [:]
    /// The one forming batch of each batcher that still has room: its new members join it at admission.
    var openBatches: [ObjectIdentifier: ObjectIdentifier] = [:]
    /// A cluster-wide group's waiting calls that have no cluster ticket yet, in arrival order, from
    /// ``unsentHead`` on; one sender takes them in order while ``senderActive``.
    var unsent: [UInt64] = []
    var unsentHead = 0
    var senderActive = false
    /// A cluster-wide group's running calls: their cluster tickets, to give back when they finish.
    var clusterHeld: [UInt64: (ticket: ClusterTicket, taskID: TaskID?)] = [:]
    /// A cluster-wide group's run time across all replicas, as its permit source last reported it.
    var clusterRunTime: Duration?
    /// A cluster-wide group's line length across all replicas, as its permit source last reported it.
    var clusterQueueSize: Int?
    /// The newest call of this replica that the source has placed, and its place: calls sent after it join
    /// the cluster-wide line right behind it.
    var lastPlaced: (ticket: UInt64, position: Int)?

    /// The place of a call of a cluster-wide group that the source has not placed yet (its ticket is on its
    /// way): right behind this replica's newest placed call while it waits, else the back of the cluster-wide
    /// line as last reported; behind the calls of this replica ahead of it that have not been placed either.
    /// `nil` before any report: then only the local place is known.
    func unplacedClusterPosition(of ticket: UInt64) -> Int? {
        let back: Int
        if let lastPlaced, lastPlaced.ticket < ticket, line.contains(ticket: lastPlaced.ticket) {
            back = lastPlaced.position + 1
        } else if let clusterQueueSize {
            back = clusterQueueSize
        } else {
            return nil
        }
        var low = unsentHead
        var high = unsent.count
        while low < high {
            let middle = (low + high) / 2
            if unsent[middle] < ticket { low = middle + 1 } else { high = middle }
        }
        return back + (low - unsentHead)
    }

    /// The run time ETAs assume: the cluster-wide figure when the source reports one, else this process's.
    var runTimeEstimate: Duration { clusterRunTime ?? estimator.estimate }

    init(
        id: ConcurrencyGroupID,
        configuration: ConcurrencyGroupConfiguration?,
        isDeclared: Bool,
        isScheduled: Bool,
        cluster: (any ClusterPermitSource)? = nil,
        prior: Duration
    ) {
        self.id = id
        limit = isScheduled ? configuration?.limit.count : nil
        budget = isScheduled ? configuration?.budget : nil
        maxQueueSize = configuration?.maxQueueSize
        self.isDeclared = isDeclared
        self.isScheduled = isScheduled
        self.cluster = isScheduled ? cluster : nil
        fairShare = isScheduled && cluster == nil ? configuration?.discipline.fairShare : nil
        line = GroupLine(fairShare.map { .fairShare($0) } ?? .fifo)
        estimator = RunTimeEstimator(prior: prior)
    }

    /// What stands in the line for one waiting call.
    struct LineEntry: Sendable {
        /// The tracked task, `nil` for an untracked call
        /// (``CallQueue/runQueued(group:weight:fairness:deadline:isolation:_:)``).
        var taskID: TaskID?
        /// Where the waiter stands: admitted (its caller has not suspended yet), or parked. It is settled when
        /// it leaves the line (``LifecycleState/settle(_:ticket:_:effects:)``).
        var waiter: WaiterState = .admitted
        /// The batcher this call is a member of, and its largest batch; `nil` for a plain call.
        var batcher: BatcherTag?
        /// A batcher member's input, carried with its place in line so that it joins a batch with it.
        var input: (any Sendable)?
        /// In a cluster-wide group: the call's cluster ticket once the source has taken it.
        var clusterTicket: ClusterTicket?
        /// In a cluster-wide group: its place in the cluster-wide line, as the source last reported it.
        var clusterPlace: (position: Int, queueSize: Int)?
    }

    /// A waiter between admission and its outcome. Settled (granted or failed) is not a state here: a settled
    /// waiter has left the line, and a caller that had not parked finds its outcome when it does.
    enum WaiterState: Sendable {
        case admitted
        /// Its caller has suspended: resumed once, by whoever settles it. The deadline's timer stops then.
        case parked(UnsafeContinuation<LifecycleState.Grant, any Error>, timer: Task<Void, Never>?)
    }

    /// Which batcher a call belongs to, and how its batches are made.
    struct BatcherTag: Sendable {
        var id: ObjectIdentifier
        var maxBatchSize: Int
        /// Makes the batch that a granted member forms. Called under the lock: it only allocates.
        var makeRun: @Sendable () -> BatchRunBase
    }

    /// A batch that holds a slot and takes members until its body starts.
    struct FormingBatch {
        struct Member {
            var ticket: UInt64
            var taskID: TaskID
            var input: any Sendable
        }

        var run: BatchRunBase
        var batcher: BatcherTag
        var held: LifecycleState.Held
        var members: [Member]

        var room: Int { batcher.maxBatchSize - members.count }
    }

    /// Whether the head of the line (with `weight`) fits a free slot and the budget left.
    func fits(weight: Int) -> Bool {
        if cluster != nil { return false }  // granted by its permit source only
        if let limit, running.count >= limit { return false }
        if let budget, budgetUsed + weight > budget { return false }
        return true
    }

    /// Whether the group holds nothing: no waiter, no running call, no live task, no parked reader.
    var isIdle: Bool {
        line.isEmpty && running.isEmpty && liveTasks == 0 && parkedReaders.isEmpty && batchMembers.isEmpty
            && formingBatches.isEmpty && !senderActive
    }

    /// Free slot numbers, lowest first, reusing returned ones before making new ones.
    struct SlotNumbers {
        /// Returned numbers, highest first, so the lowest is at the end.
        private var returned: [Int] = []
        private var nextFresh = 0

        mutating func take() -> Int {
            if let slot = returned.popLast() { return slot }
            defer { nextFresh += 1 }
            return nextFresh
        }

        mutating func give(_ slot: Int) {
            let index = returned.firstIndex { $0 < slot } ?? returned.endIndex
            returned.insert(slot, at: index)
        }
    }
}
