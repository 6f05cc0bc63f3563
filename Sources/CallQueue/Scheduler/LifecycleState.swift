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
        var phase: Phase
        /// Advances on every change of this task's own state (start, progress, finish).
        var version: UInt64 = 0
        var subscriptions: [ObjectIdentifier: UpdateSubscription] = [:]

        init(
            id: TaskID, group: ConcurrencyGroupID, control: TaskControl, queuedAt: ContinuousClock.Instant, phase: Phase
        ) {
            self.id = id
            self.group = group
            self.control = control
            self.queuedAt = queuedAt
            self.phase = phase
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
    /// Who waits for a closed queue to have no call holding a slot.
    var drainWaiters: [ObjectIdentifier: CheckedContinuation<Void, Never>] = [:]

    /// Closed, and no call holds a slot: a shutdown may end.
    var isDrained: Bool { isClosed && runningInAll == 0 }

    init(settings: Settings, scheduling: Scheduling?) {
        self.settings = settings
        self.scheduling = scheduling
        finished = TaskHistory(capacity: settings.finishedTaskHistory)
        results = TaskHistory(capacity: settings.resultHistory)
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

    // MARK: Admission

    /// What ``admit`` decided.
    enum Admitted {
        case granted(Held)
        case queued(ticket: UInt64)
    }

    /// Admits a call into its group's line, or throws without registering anything. A tracked call
    /// (`task` set) becomes a live task in the same step. The call is granted at once when nobody waits
    /// and its slot, weight and the process-wide limit are free.
    mutating func admit(
        group groupID: ConcurrencyGroupID,
        weight requestedWeight: Int?,
        task: (id: TaskID, control: TaskControl)?,
        batcher: GroupState.BatcherTag? = nil,
        input: (any Sendable)? = nil,
        now: ContinuousClock.Instant,
        effects: inout Effects
    ) throws -> Admitted {
        if isClosed {
            throw CallQueueError(
                .closed, "the call queue is closed (the server is shutting down)", group: groupID, taskID: task?.id)
        }
        if let task, tasks[task.id] != nil {
            throw CallQueueError(
                .duplicateTask, "a live task already has the id '\(task.id)'; use a new id", group: groupID,
                taskID: task.id)
        }
        let group = try ensureGroup(groupID)
        defer { releaseIfIdle(group) }
        if let batcher, let task, let input, let runID = openBatch(of: batcher, in: groupID) {
            // Its batcher's batch is forming and has room: it joins it, and waits in no line.
            nextTicket += 1
            revision += 1
            tasks[task.id] = LiveTask(
                id: task.id, group: groupID, control: task.control, queuedAt: now, phase: .waiting(ticket: nextTicket))
            group.liveTasks += 1
            observe(task.id, now: now, into: &effects)
            if let held = join(
                runID, ticket: nextTicket, taskID: task.id, input: input, group: groupID, now: now, effects: &effects)
            {
                return .granted(held)
            }
        }
        let (weight, wouldWait, isScheduled) = try admissionDecision(
            group: group, weight: requestedWeight, taskID: task?.id, batchSize: batcher?.maxBatchSize ?? 1, now: now)
        nextTicket += 1
        revision += 1
        let ticket = nextTicket
        if let task {
            tasks[task.id] = LiveTask(
                id: task.id, group: groupID, control: task.control, queuedAt: now, phase: .waiting(ticket: ticket))
            group.liveTasks += 1
            observe(task.id, now: now, into: &effects)
        }
        if isScheduled && !wouldWait {
            var held = start(ticket: ticket, taskID: task?.id, weight: weight, in: group, now: now)
            if let batcher {
                _ = formBatch(
                    ticket: ticket, taskID: task?.id, input: input, batcher: batcher, held: &held, now: now,
                    effects: &effects)
            }
            return .granted(held)
        }
        group.line.enqueue(
            ticket: ticket, weight: weight,
            entry: GroupState.LineEntry(taskID: task?.id, batcher: batcher, input: input))
        if let batcher { group.batchMembers[batcher.id, default: []].append(ticket) }
        waitingInAll += 1
        // The queue size grew: with no fraction set, waiting readers hear of every change of it.
        if settings.positionUpdateFraction == 0 { moved(group, effects: &effects) }
        if let source = group.cluster {
            needsClusterTicket(ticket, in: groupID, source: source, effects: &effects)
        }
        return .queued(ticket: ticket)
    }

    /// The call's weight, whether it would wait, and whether its group is scheduled; throws when the call is
    /// not admitted.
    private func admissionDecision(
        group: GroupState, weight requestedWeight: Int?, taskID: TaskID?, batchSize: Int,
        now: ContinuousClock.Instant
    ) throws -> (weight: Int, wouldWait: Bool, isScheduled: Bool) {
        let groupID = group.id
        let weight = try Self.validated(weight: requestedWeight, in: group, taskID: taskID)
        let wouldWait = !group.line.isEmpty || !group.fits(weight: weight) || !processPermitFree
        if group.isScheduled {
            try Admission.check(
                Admission.Counts(
                    group: groupID,
                    limit: group.limit,
                    waitingInGroup: group.line.count,
                    groupMaxQueueSize: group.maxQueueSize,
                    waitingInAll: waitingInAll,
                    overallMaxQueueSize: scheduling?.maxQueueSize,
                    wouldWait: wouldWait,
                    // Counted as the status counts it: a batcher's member waits for the batches ahead of its own.
                    estimatedWait: wouldWait
                        ? estimatedWait(in: group, position: group.line.count / batchSize, now: now) : .zero,
                    maxEstimatedWait: scheduling?.maxEstimatedWait
                ),
                taskID: taskID
            )
        }
        return (weight, wouldWait, group.isScheduled)
    }

    static func validated(weight: Int?, in group: GroupState, taskID: TaskID?) throws -> Int {
        guard let weight else { return 0 }
        guard let budget = group.budget else {
            throw CallQueueError(
                .invalidArgument,
                "the call declares weight \(weight), but group '\(group.id)' has no budget; declare one or pass "
                    + "no weight",
                group: group.id, taskID: taskID)
        }
        guard weight >= 1 && weight <= budget else {
            throw CallQueueError(
                .invalidArgument,
                "weight \(weight) is outside 1...\(budget), the budget of group '\(group.id)'",
                group: group.id, taskID: taskID)
        }
        return weight
    }

    var processPermitFree: Bool {
        guard let limit = scheduling?.processWideLimit else { return true }
        return processRunning < limit
    }

    // MARK: Waiting

    /// The caller has suspended: store its continuation, or hand it what came first.
    mutating func park(
        ticket: UInt64,
        group: ConcurrencyGroupID,
        continuation: UnsafeContinuation<LifecycleState.Grant, any Error>,
        timer: Task<Void, Never>?,
        isCancelled: Bool,
        effects: inout Effects
    ) -> EarlyOutcome? {
        if let outcome = early.removeValue(forKey: ticket) {
            if let timer { effects.append(.stopTimer(timer)) }
            return outcome
        }
        if isCancelled {
            if let timer { effects.append(.stopTimer(timer)) }
            _ = removeWaiting(ticket: ticket, group: group, error: CancellationError(), effects: &effects)
            // The caller is here and hears it now: nothing is kept for it to find.
            early[ticket] = nil
            return .failed(CancellationError())
        }
        groups[group]?.line.update(ticket: ticket) { entry in
            entry.waiter = .parked(continuation, timer: timer)
        }
        parkedWaiters += 1
        return nil
    }

    /// The one way a waiter that left its line is answered: its timer stops and its parked caller resumes with
    /// `outcome`; a caller that has not parked yet finds the outcome when it does.
    mutating func settle(
        _ entry: GroupState.LineEntry, ticket: UInt64, _ outcome: EarlyOutcome, effects: inout Effects
    ) {
        guard case .parked(let continuation, let timer) = entry.waiter else {
            early[ticket] = outcome
            return
        }
        parkedWaiters -= 1
        if let timer { effects.append(.stopTimer(timer)) }
        switch outcome {
        case .granted(let grant): effects.append(.grant(continuation, grant))
        case .failed(let error): effects.append(.fail(continuation, error))
        }
    }

    /// Takes a waiting call out of its line (cancellation, deadline, cancel by id) and fails it with
    /// `error`; serves those behind it that now fit. Returns whether it was waiting.
    @discardableResult
    mutating func removeWaiting(
        ticket: UInt64, group groupID: ConcurrencyGroupID, error: any Error, effects: inout Effects
    ) -> Bool {
        guard let (waiter, wasFirst) = groups[groupID]?.line.remove(ticket: ticket) else { return false }
        waitingInAll -= 1
        leaveClusterTicket(of: waiter.continuation, in: groupID, effects: &effects)
        settle(waiter.continuation, ticket: ticket, .failed(error), effects: &effects)
        moved(groupID, effects: &effects)
        if wasFirst { serve(groupID, now: nil, effects: &effects) }
        return true
    }

    // MARK: Granting

    /// Moves an admitted call to running: a slot, its weight of the budget, a process permit.
    private mutating func start(
        ticket: UInt64, taskID: TaskID?, weight: Int, in group: GroupState, now: ContinuousClock.Instant,
        permit: ClusterPermit? = nil
    ) -> Held {
        let slot = permit?.slot ?? group.slots.take()
        group.running[ticket] = now
        group.budgetUsed += weight
        runningInAll += 1
        if scheduling?.processWideLimit != nil { processRunning += 1 }
        revision += 1
        if let taskID, let task = tasks[taskID] {
            task.phase = .running(
                Running(ticket: ticket, slot: slot, weight: weight, startedAt: now, permit: permit))
            task.version += 1
        }
        return Held(group: group.id, ticket: ticket, slot: slot, weight: weight)
    }

    /// Grants waiting calls that now fit, in strict order: within a group the head blocks those behind it;
    /// across groups, the process-wide limit goes to the oldest eligible head.
    mutating func serve(_ groupID: ConcurrencyGroupID, now: ContinuousClock.Instant?, effects: inout Effects) {
        guard let group = groups[groupID] else { return }
        serve(group, now: now, effects: &effects)
    }

    mutating func serve(_ group: GroupState, now: ContinuousClock.Instant?, effects: inout Effects) {
        guard scheduling != nil else { return }
        var now = now
        if scheduling?.processWideLimit == nil {
            while let head = group.line.head, group.fits(weight: head.weight) {
                grantHead(of: group, now: &now, effects: &effects)
            }
            return
        }
        var granted: Set<ConcurrencyGroupID> = []
        while processPermitFree {
            var oldest: (group: ConcurrencyGroupID, ticket: UInt64)?
            for (id, group) in groups {
                guard let head = group.line.head, group.isScheduled, group.fits(weight: head.weight) else { continue }
                if oldest == nil || head.ticket < oldest!.ticket { oldest = (id, head.ticket) }
            }
            guard let oldest, let oldestGroup = groups[oldest.group] else { break }
            grantHead(of: oldestGroup, now: &now, effects: &effects)
            granted.insert(oldest.group)
        }
        // A head that waits for the process-wide limit counts the other groups' heads ahead of it: a grant in
        // any group moves it.
        guard !granted.isEmpty else { return }
        for (id, other) in groups where !granted.contains(id) && !other.line.isEmpty {
            moved(other, effects: &effects)
        }
    }

    private mutating func grantHead(
        of group: GroupState, now: inout ContinuousClock.Instant?, effects: inout Effects
    ) {
        let waiter = group.line.removeHead()
        let instant = now ?? settings.clock.now
        now = instant
        grant(waiter, in: group, now: instant, permit: nil, effects: &effects)
    }

    /// Starts a waiter that has left its line and resumes its caller (or keeps the grant for it to find).
    mutating func grant(
        _ waiter: LineWaiter<GroupState.LineEntry>, in group: GroupState,
        now instant: ContinuousClock.Instant, permit: ClusterPermit?, effects: inout Effects
    ) {
        waitingInAll -= 1
        var held = start(
            ticket: waiter.ticket, taskID: waiter.continuation.taskID, weight: waiter.weight, in: group,
            now: instant, permit: permit)
        if let batcher = waiter.continuation.batcher {
            _ = formBatch(
                ticket: waiter.ticket, taskID: waiter.continuation.taskID, input: waiter.continuation.input,
                batcher: batcher, held: &held, now: instant, effects: &effects)
        }
        // A parked caller's start is reported here, right after the finish that let it in; one that has not
        // parked reports its own.
        let reportsStart: Bool
        if case .parked = waiter.continuation.waiter { reportsStart = settings.observes } else { reportsStart = false }
        if reportsStart, let taskID = waiter.continuation.taskID, case .running(var running) = tasks[taskID]?.phase {
            running.startReported = true
            tasks[taskID]?.phase = .running(running)
            observe(taskID, now: instant, into: &effects)
        }
        settle(
            waiter.continuation, ticket: waiter.ticket,
            .granted(Grant(slot: held.slot, startObserved: reportsStart, batch: held.batch)), effects: &effects)
        if let taskID = waiter.continuation.taskID { wake(taskID, effects: &effects) }
        moved(group, effects: &effects)
    }

    /// Gives back what a running call held and serves the line.
    mutating func release(
        _ held: Held, finished: TaskStatus? = nil, now: ContinuousClock.Instant, effects: inout Effects
    ) {
        guard let group = groups[held.group], group.running.removeValue(forKey: held.ticket) != nil else { return }
        if let source = group.cluster {
            if let (ticket, _) = group.clusterHeld.removeValue(forKey: held.ticket) {
                effects.append(.leaveCluster(source, ticket, finished: finished))
            }
        } else {
            group.slots.give(held.slot)
        }
        group.budgetUsed -= held.weight
        runningInAll -= 1
        if scheduling?.processWideLimit != nil { processRunning -= 1 }
        revision += 1
        serve(group, now: now, effects: &effects)
        releaseIfIdle(group)
        if isDrained && !drainWaiters.isEmpty {
            effects.append(.drained(Array(drainWaiters.values)))
            drainWaiters.removeAll()
        }
    }

    // MARK: Positions and readers

    /// `count` calls left a line: positions behind them changed. Parked readers that are due are woken
    /// now (interval zero) or by one flush per interval.
    ///
    /// Also called, with a count of one, for a change that no departure from this line made: the queue grew
    /// (when every change is told), or another group's head went first under the process-wide limit. Either
    /// moves a place by one at most, so the count still bounds how far any place moved.
    mutating func moved(_ groupID: ConcurrencyGroupID, count: Int = 1, effects: inout Effects) {
        guard let group = groups[groupID] else { return }
        moved(group, count: count, effects: &effects)
    }

    mutating func moved(_ group: GroupState, count: Int = 1, effects: inout Effects) {
        group.moved &+= UInt64(count)
        revision += 1
        if let earliest = group.wakeups.earliestDue, earliest <= group.moved {
            if settings.positionUpdateInterval <= .zero {
                wakeParked(group, effects: &effects)
            } else if !group.flushPending {
                group.flushPending = true
                effects.append(.scheduleFlush(group.id))
            }
        }
    }

    /// The interval has passed: wake the group's parked readers; those whose position moved read it.
    mutating func flush(_ groupID: ConcurrencyGroupID, effects: inout Effects) {
        guard let group = groups[groupID] else { return }
        group.flushPending = false
        wakeParked(group, effects: &effects)
        releaseIfIdle(group)
    }

    /// Wakes the parked readers that are due; those not due stay parked at no cost.
    private func wakeParked(_ group: GroupState, effects: inout Effects) {
        while let (due, subscription) = group.wakeups.popDue(atOrBefore: group.moved) {
            let key = ObjectIdentifier(subscription)
            // Stale: it left the parked set, or parked again with another due count.
            guard group.parkedReaders[key] === subscription, subscription.wakeAt == due else { continue }
            group.parkedReaders[key] = nil
            group.positionWakeups += 1
            subscription.positionDue = true
            if let reader = subscription.parked {
                subscription.parked = nil
                effects.append(.wakeReader(reader))
            }
        }
        if group.parkedReaders.isEmpty { group.wakeups.removeAll() }
    }

    /// A task's own state changed: its parked readers read now.
    mutating func wake(_ id: TaskID, effects: inout Effects) {
        guard let task = tasks[id], !task.subscriptions.isEmpty else { return }
        wake(task, in: groups[task.group], effects: &effects)
    }

    func wake(_ task: LiveTask, in group: GroupState?, effects: inout Effects) {
        for subscription in task.subscriptions.values {
            if let reader = subscription.parked {
                subscription.parked = nil
                effects.append(.wakeReader(reader))
            }
            group?.parkedReaders[ObjectIdentifier(subscription)] = nil
        }
    }

    // MARK: Progress and finish

    mutating func setProgress(of id: TaskID, fraction: Double, step: String?, effects: inout Effects) {
        guard let task = tasks[id], case .running(var running) = task.phase else { return }
        running.progress = fraction
        running.step = step
        task.phase = .running(running)
        task.version += 1
        revision += 1
        wake(id, effects: &effects)
    }

    /// Moves a live task to the history, gives back what it held and grants the next call, in one step,
    /// so the finish is recorded before its slot goes to anyone else.
    mutating func finish(
        _ id: TaskID,
        outcome: TaskStatus.Outcome,
        result: (any Sendable)?,
        bodyRan: Bool = true,
        now: ContinuousClock.Instant,
        effects: inout Effects
    ) -> TaskStatus? {
        guard let task = tasks.removeValue(forKey: id) else { return nil }
        let group = groups[task.group]
        wake(task, in: group, effects: &effects)
        group?.liveTasks -= 1
        revision += 1
        var queuedFor = now - task.queuedAt
        var ranFor = Duration.zero
        var started = false
        switch task.phase {
        case .waiting(let ticket):
            // A scheduled call has already left its line when it finishes unstarted; a hand-tracked task
            // may still stand in it.
            if let group, group.line.remove(ticket: ticket) != nil {
                waitingInAll -= 1
                moved(group, effects: &effects)
            }
        case .running(let running) where bodyRan || running.startReported:
            queuedFor = running.startedAt - task.queuedAt
            ranFor = now - running.startedAt
            started = true
            if outcome != .cancelled { group?.estimator.record(ranFor) }
        case .running:
            break  // granted, but its caller was gone before the body began
        }
        let status = TaskStatus(
            id: id,
            group: task.group,
            state: .finished(.init(outcome: outcome, queuedFor: queuedFor, ranFor: ranFor, started: started)),
            version: revision
        )
        for subscription in task.subscriptions.values { subscription.final = status }
        finished.record(status, for: id)
        if let result { results.record(result, for: id) }
        if settings.observes { effects.append(.observe(status)) }
        if case .running(let running) = task.phase, running.inBatch {
            // The batch gives its slot back when its body returns.
        } else if case .running(let running) = task.phase, group?.isScheduled == true {
            release(
                Held(group: task.group, ticket: running.ticket, slot: running.slot, weight: running.weight),
                finished: status, now: now, effects: &effects)
        } else if case .running(let running) = task.phase {
            group?.running[running.ticket] = nil  // a hand-tracked task: its slot was the caller's
        }
        if let group { releaseIfIdle(group) }
        return status
    }

    /// Fails every waiting call and refuses later ones.
    mutating func close(effects: inout Effects) {
        guard !isClosed else { return }
        isClosed = true
        let error = CallQueueError(.closed, "the call queue is closed (the server is shutting down)")
        for id in Array(groups.keys) {
            guard let waiters = groups[id]?.line.removeAll() else { continue }
            waitingInAll -= waiters.count
            for waiter in waiters {
                leaveClusterTicket(of: waiter.continuation, in: id, effects: &effects)
                settle(waiter.continuation, ticket: waiter.ticket, .failed(error), effects: &effects)
            }
            if !waiters.isEmpty { moved(id, count: waiters.count, effects: &effects) }
        }
    }

    // MARK: Statuses

    func status(of id: TaskID, now: ContinuousClock.Instant) -> TaskStatus? {
        guard let task = tasks[id] else { return finished[id] }
        return status(of: task, now: now)
    }

    func status(of task: LiveTask, now: ContinuousClock.Instant) -> TaskStatus {
        // A live task keeps its group (``GroupState/liveTasks``); the fallback only keeps a broken invariant
        // from crashing a server.
        let group =
            groups[task.group]
            ?? GroupState(
                id: task.group, configuration: nil, isDeclared: false, isScheduled: false,
                prior: settings.initialRunTimeEstimate)
        let estimate = group.runTimeEstimate
        switch task.phase {
        case .waiting(let ticket):
            var place = group.line.entry(ticket: ticket)?.clusterPlace
            if place == nil, group.cluster != nil, let back = group.unplacedClusterPosition(of: ticket) {
                // Not placed by the source yet: where it will join, not its local place, so its position does
                // not jump once the source answers.
                place = (back, back + 1)
            }
            var position = place?.position ?? group.line.place(of: ticket) ?? 0
            var queueSize = max(place?.queueSize ?? group.line.count, position + 1)
            var holder = TaskStatus.Holder.group
            // A batcher's member waits for the batches ahead of its own: the calls ahead in batches of its
            // largest size.
            let batchSize = group.line.entry(ticket: ticket)?.batcher?.maxBatchSize ?? 1
            let runsAhead = position / batchSize
            var wait = estimatedWait(in: group, position: runsAhead, now: now)
            if position == 0, group.isScheduled, !processPermitFree,
                let head = group.line.head, group.fits(weight: head.weight), let limit = scheduling?.processWideLimit
            {
                holder = .processLimit
                position = groups.values.count { other in
                    guard let otherHead = other.line.head else { return false }
                    return other.isScheduled && otherHead.ticket < ticket && other.fits(weight: otherHead.weight)
                }
                // Its line is the group's behind it and the other groups' heads that go first.
                queueSize = group.line.count + position
                wait = .clampedSeconds(estimate.seconds * Double(position + 1) / Double(limit))
            }
            return TaskStatus(
                id: task.id,
                group: task.group,
                state: .queued(
                    .init(
                        position: position,
                        queueSize: queueSize,
                        heldBy: holder,
                        estimatedWait: wait,
                        eta: min(wait + estimate, .etaLimit)
                    )),
                version: revision
            )
        case .running(let running):
            let elapsed = now - running.startedAt
            let eta: Duration
            if let progress = running.progress, progress > 0 {
                eta = .clampedSeconds(elapsed.seconds / progress - elapsed.seconds)
            } else {
                eta = .clampedSeconds(estimate.seconds - elapsed.seconds)
            }
            return TaskStatus(
                id: task.id,
                group: task.group,
                state: .running(
                    .init(
                        slot: running.slot, progress: running.progress, step: running.step, elapsed: elapsed, eta: eta
                    )),
                version: revision
            )
        }
    }

    /// The task's status for the observer, when it is live.
    func observe(_ id: TaskID, now: ContinuousClock.Instant, into effects: inout Effects) {
        guard settings.observes else { return }
        if let status = status(of: id, now: now) { effects.append(.observe(status)) }
    }
}
