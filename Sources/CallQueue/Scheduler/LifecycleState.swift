/// The rules of the task lifecycle and of the groups' lines, as one value behind ``TaskLifecycle``'s lock.
///
/// Admission and the place in line are one step here: a task is registered as queued and appended to its
/// group's line in the same mutation, so a task visible as queued at position p starts before every call
/// admitted after it. A finish records the task, returns its slot and grants the next one in one mutation.
/// Nothing here suspends, resumes or calls user code: mutations collect ``Effects`` that the owner runs
/// after dropping the lock.
struct LifecycleState {
    struct Settings: Sendable {
        var finishedTaskHistory: Int
        var resultHistory: Int
        /// How long a finished task stays in the histories; `nil`: until the counts push it out.
        var finishedTaskMaxAge: Duration? = nil
        /// The most bytes of results kept, as results that are ``PartialOutput``s count themselves.
        var resultHistoryBytes: Int? = nil
        var initialRunTimeEstimate: Duration
        var positionUpdateInterval: Duration
        /// The least move, as a fraction of the place last reported, that a waiting reader is told of; 0: any.
        var positionUpdateFraction: Double
        /// Whether anyone observes statuses (an observer is set): statuses are made for it only then.
        var observes: Bool
        /// Where a grant that no caller timed (a cancel, a deadline) reads the time: the injected clock.
        var clock: LifecycleClock = .continuous
        /// Idle undeclared groups kept for reuse before idle ones are freed: a few busy undeclared groups are
        /// not made anew for every call, and a flood of distinct names stays bounded.
        var keptIdleGroups = 64
        /// How much of each task's partial outputs is kept.
        var partialOutputs = PartialOutputLimits()
    }

    /// How a ``CallQueue`` schedules its groups; `nil` for a ``TaskLifecycle`` that only records.
    struct Scheduling: Sendable {
        var groups: [ConcurrencyGroupID: ConcurrencyGroupConfiguration]
        var defaultGroup: ConcurrencyGroupConfiguration
        var undeclaredGroups: CallQueue.UndeclaredGroupPolicy
        var maxQueueSize: Int?
        var maxEstimatedWait: Duration?
        var processWideLimit: Int?
        /// Cluster-wide groups and where their grants come from.
        var permitSources: [ConcurrencyGroupID: any ClusterPermitSource] = [:]
    }

    enum Phase {
        /// In its group's line with this ticket.
        case waiting(ticket: UInt64)
        case running(Running)
    }

    struct Running {
        var ticket: UInt64
        var slot: Int
        var weight: Int
        var startedAt: ContinuousClock.Instant
        var progress: Double?
        var step: String?
        /// The observer was told it runs; its finish then says it started, so meters stay balanced.
        var startReported = false
        /// A member of a batch: the batch holds the slot, so this task's finish gives nothing back.
        var inBatch = false
        /// The grant of a cluster-wide group: slot and fencing number.
        var permit: ClusterPermit?
    }

    /// A task from admission to finish. A class, guarded by the scheduler's lock like the rest of the state:
    /// a call reads and changes its task several times, and a struct was copied (and its fields retained) at
    /// each read and written back, hashed again, at each change.
    final class LiveTask: @unchecked Sendable {
        let id: TaskID
        let group: ConcurrencyGroupID
        let control: TaskControl
        let queuedAt: ContinuousClock.Instant
        var phase: Phase {
            didSet {
                if case .running = phase { isRunning = true } else { isRunning = false }
            }
        }
        /// Whether ``phase`` is running, kept beside it: an emit checks it without copying the phase.
        private(set) var isRunning = false
        /// Advances on every change of this task's own state (start, progress, finish).
        var version: UInt64 = 0
        var subscriptions: [ObjectIdentifier: UpdateSubscription] = [:]
        /// Its partial outputs, made at its first emit or its first reader of outputs.
        var outputs: OutputBuffer?
        /// The call's fairness key, kept only where its group reports keys.
        let fairnessKey: FairnessKey?

        init(
            id: TaskID, group: ConcurrencyGroupID, control: TaskControl, queuedAt: ContinuousClock.Instant,
            phase: Phase, fairnessKey: FairnessKey? = nil
        ) {
            self.id = id
            self.group = group
            self.control = control
            self.queuedAt = queuedAt
            self.phase = phase
            if case .running = phase { isRunning = true }
            self.fairnessKey = fairnessKey
        }
    }

    /// What a call holds once granted: what a release gives back.
    struct Held: Sendable {
        var group: ConcurrencyGroupID
        var ticket: UInt64
        var slot: Int
        var weight: Int
        /// The batch a batcher's member runs in: it holds the slot, and gives it back when its body returns.
        var batch: BatchRunBase? = nil
    }

    /// A finished task's outputs, as far as the history keeps them: the chunks are gone, their number stays.
    struct FinishedOutputs: Sendable {
        var latest: (any PartialOutput)?
        var chunkCount: Int
    }

    /// What a parked caller is resumed with.
    struct Grant: Sendable {
        var slot: Int
        /// Whether the granting thread already reported the start to the observer, right after the finish
        /// that let it in.
        var startObserved: Bool
        /// For a batcher's member pulled into a batch that another member formed: that batch.
        var batch: BatchRunBase? = nil
    }

    /// How a waiter is settled: a grant, or a failure. One that comes before the caller suspended is kept for
    /// it to find.
    enum EarlyOutcome {
        case granted(Grant)
        case failed(any Error)
    }

    /// What the scheduler does after dropping the lock: the mutation's actions, in the order it asked for them.
    typealias Effects = SchedulerActions

    let settings: Settings
    let scheduling: Scheduling?
    var isClosed = false
    var groups: [ConcurrencyGroupID: GroupState] = [:]
    var tasks: [TaskID: LiveTask] = [:]
    var finished: TaskHistory<TaskStatus>
    var results: TaskHistory<any Sendable>
    /// What each finished task in ``finished`` that emitted anything left for later readers: its last latest
    /// value and how many chunks it emitted.
    var finishedOutputs: TaskHistory<FinishedOutputs>
    var early: [UInt64: EarlyOutcome] = [:]
    var nextTicket: UInt64 = 0
    /// Advances on every mutation; a status carries the value it was made at, so statuses of one task
    /// can be ordered.
    var revision: UInt64 = 0
    var waitingInAll = 0
    var processRunning = 0
    /// Waiting calls whose callers have suspended (the rest are between admission and suspending).
    var parkedWaiters = 0
    /// Calls holding a slot of a scheduled group, in all groups (a batch counts once).
    var runningInAll = 0

    /// Closed, and no call holds a slot: a shutdown may end.
    var isDrained: Bool { isClosed && runningInAll == 0 }

    init(settings: Settings, scheduling: Scheduling?) {
        self.settings = settings
        self.scheduling = scheduling
        finished = TaskHistory(capacity: settings.finishedTaskHistory, maxAge: settings.finishedTaskMaxAge)
        results = TaskHistory(
            capacity: settings.resultHistory, maxAge: settings.finishedTaskMaxAge, maxBytes: settings.resultHistoryBytes
        )
        finishedOutputs = TaskHistory(capacity: settings.finishedTaskHistory, maxAge: settings.finishedTaskMaxAge)
    }

    // MARK: Groups

    /// The group's state, made on first use. Throws for an undeclared group under the `.reject` policy.
    @discardableResult
    mutating func ensureGroup(_ id: ConcurrencyGroupID) throws -> GroupState {
        if let group = groups[id] { return group }
        let group = try makeGroup(id)
        groups[id] = group
        return group
    }

    private func makeGroup(_ id: ConcurrencyGroupID) throws -> GroupState {
        guard let scheduling else {
            return GroupState(
                id: id, configuration: nil, isDeclared: false, isScheduled: false,
                prior: settings.initialRunTimeEstimate)
        }
        if let declared = scheduling.groups[id] {
            return GroupState(
                id: id, configuration: declared, isDeclared: true, isScheduled: true,
                cluster: scheduling.permitSources[id], prior: settings.initialRunTimeEstimate)
        }
        if scheduling.undeclaredGroups == .reject {
            throw CallQueueError(
                .unknownGroup,
                "group '\(id)' is not declared; declare it in CallQueue.Configuration.groups, or set "
                    + "undeclaredGroups to .defaultLimit",
                group: id
            )
        }
        return GroupState(
            id: id, configuration: scheduling.defaultGroup, isDeclared: false, isScheduled: true,
            prior: settings.initialRunTimeEstimate)
    }

    /// Frees an undeclared group that holds nothing, once more than ``Settings/keptIdleGroups`` undeclared
    /// groups exist.
    mutating func releaseIfIdle(_ id: ConcurrencyGroupID) {
        guard groups.count - (scheduling?.groups.count ?? 0) > settings.keptIdleGroups, let group = groups[id] else {
            return
        }
        releaseIfIdle(group)
    }

    mutating func releaseIfIdle(_ group: GroupState) {
        guard groups.count - (scheduling?.groups.count ?? 0) > settings.keptIdleGroups else { return }
        guard !group.isDeclared, group.isIdle, !group.flushPending else { return }
        groups[group.id] = nil
    }

    func estimate(for group: ConcurrencyGroupID) -> Duration {
        groups[group]?.runTimeEstimate ?? settings.initialRunTimeEstimate
    }

    /// Gradio's wait formula with our estimate: the time until a slot frees (when all are taken), plus one
    /// run per `limit` calls ahead. Clamped to `0...Duration.etaLimit`.
    func estimatedWait(in group: GroupState, position: Int, now: ContinuousClock.Instant) -> Duration {
        let estimate = group.runTimeEstimate.seconds
        guard group.isScheduled else { return .clampedSeconds(estimate * Double(position)) }
        guard let limit = group.limit else { return .zero }
        var untilSlotFrees = 0.0
        if group.running.count >= limit {
            let soonest = group.running.values.lazy.map { estimate - (now - $0).seconds }.min() ?? 0
            untilSlotFrees = max(0, soonest)
        }
        return .clampedSeconds(untilSlotFrees + estimate * Double(position) / Double(limit))
    }
}
