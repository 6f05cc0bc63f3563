/// The one owner of the queue's state: it alone takes the lock, reads the clock for the state, tells the
/// observer, and runs the actions a mutation asks for.
///
/// Every verb is one method: it takes the lock once, mutates ``LifecycleState`` (a value with no side effects),
/// drops the lock, and runs the collected ``SchedulerAction``s in order. Nothing else in the library locks the
/// state: ``TaskLifecycle`` (the public front), ``CallQueue``, ``Batcher`` and the cluster code call these verbs.
/// No user code, cancellation handler, continuation resume or observer call runs under the lock.
final class Scheduler: Sendable {
    private let state: LockedState<LifecycleState>
    let clock: LifecycleClock
    let observer: (any CallQueueObserver)?
    let positionUpdateInterval: Duration
    /// The tasks the scheduler starts on its own (position flushes, cluster senders, batches, submitted jobs):
    /// a shutdown ends with none of them alive.
    let background = BackgroundTasks()
    /// Opened by the release that leaves a closed queue with no call holding a slot.
    private let drainSignal = OneShotSignal()
    /// The declared groups with fair share: a call's place in them is worked out before the lock is taken
    /// (a key's weight may come from the application's function).
    private let fairShares: [ConcurrencyGroupID: FairShare]
    /// Whether results count against a byte budget: only then is a finished call's result asked its size.
    private let measuresResults: Bool

    init(state: LifecycleState, clock: LifecycleClock, observer: (any CallQueueObserver)?, interval: Duration) {
        var fairShares: [ConcurrencyGroupID: FairShare] = [:]
        for (id, configuration) in state.scheduling?.groups ?? [:] where state.scheduling?.permitSources[id] == nil {
            fairShares[id] = configuration.discipline.fairShare
        }
        self.fairShares = fairShares
        measuresResults = state.settings.resultHistoryBytes != nil
        self.state = LockedState(state)
        self.clock = clock
        self.observer = observer
        positionUpdateInterval = interval
    }

    /// Reads the state without changing it: for snapshots and tests.
    func inspect<Result>(_ body: (LifecycleState) throws -> Result) rethrows -> Result {
        try state.withLock { try body($0) }
    }

    /// Runs one mutation under the lock, then its actions.
    @inline(__always)
    private func mutate<Result>(
        _ body: (inout LifecycleState, inout SchedulerActions) throws -> Result
    ) rethrows
        -> Result
    {
        var actions = SchedulerActions()
        let result = try state.withLock { try body(&$0, &actions) }
        perform(actions)
        return result
    }

    // MARK: Admission and waiting

    /// Admits a call into its group's line (or grants it at once); throws without registering anything.
    func admit(
        group: ConcurrencyGroupID, weight: Int?, fairness: CallFairness? = nil,
        task: (id: TaskID, control: TaskControl)?, batcher: GroupState.BatcherTag? = nil, input: (any Sendable)? = nil
    ) throws -> LifecycleState.Admitted {
        // A group in arrival order ignores keys and priorities: it reads no task-local for them.
        let order =
            fairness == nil && (fairShares.isEmpty || fairShares[group] == nil)
            ? .arrival : try lineOrder(in: group, fairness: fairness ?? CallFairness.current, taskID: task?.id)
        let now = clock.now
        return try mutate { state, actions in
            try state.admit(
                group: group, weight: weight, order: order, task: task, batcher: batcher, input: input, now: now,
                effects: &actions)
        }
    }

    /// Where a call stands in its group's order: checks its key and priority, and, in a group with fair share,
    /// works out its key's weight (which may call the application's function: never under the lock).
    private func lineOrder(
        in group: ConcurrencyGroupID, fairness: CallFairness, taskID: TaskID?
    ) throws -> LineOrder {
        do {
            try fairness.priority.validate()
            try fairness.key?.validate()
            guard let fairShare = fairShares[group] else { return .arrival }
            let weight = try fairShare.weight(of: fairness.key, group: group)
            return LineOrder(
                key: fairness.key, stride: FairShare.stride(weight: weight), level: fairness.priority.level)
        } catch var error as CallQueueError {
            error.group = group
            error.taskID = taskID
            throw error
        }
    }

    /// Waits in line until the call is settled: granted (its slot, and its batch for a batcher's member) or
    /// failed (cancelled, timed out, closed, lease lost).
    func waitForGrant(
        ticket: UInt64, group: ConcurrencyGroupID, deadline: ContinuousClock.Instant?
    ) async throws -> LifecycleState.Grant {
        try await withTaskCancellationHandler {
            try await withUnsafeThrowingContinuation {
                (continuation: UnsafeContinuation<LifecycleState.Grant, any Error>) in
                let timer = deadline.map { scheduleTimeout(of: ticket, in: group, at: $0) }
                let isCancelled = Task.isCancelled
                let early = mutate { state, actions in
                    state.park(
                        ticket: ticket, group: group, continuation: continuation, timer: timer,
                        isCancelled: isCancelled, effects: &actions)
                }
                switch early {
                case nil: break
                case .granted(let grant): continuation.resume(returning: grant)
                case .failed(let error): continuation.resume(throwing: error)
                }
            }
        } onCancel: {
            leaveLine(ticket: ticket, group: group, error: CancellationError())
        }
    }

    private func scheduleTimeout(
        of ticket: UInt64, in group: ConcurrencyGroupID, at deadline: ContinuousClock.Instant
    ) -> Task<Void, Never> {
        Task { [clock] in
            do {
                try await clock.sleep(until: deadline)
            } catch {
                return  // granted or gone first
            }
            self.leaveLine(
                ticket: ticket, group: group,
                error: CallQueueError(
                    .timedOut, "the deadline passed while waiting in group '\(group)'", group: group))
        }
    }

    /// Takes a waiting call out of its line and fails it with `error`.
    func leaveLine(ticket: UInt64, group: ConcurrencyGroupID, error: any Error) {
        mutate { state, actions in
            _ = state.removeWaiting(ticket: ticket, group: group, error: error, effects: &actions)
        }
    }

    /// Gives back what a call held; the next in line is granted in the same step.
    func release(_ held: LifecycleState.Held) {
        let now = clock.now
        mutate { state, actions in state.release(held, now: now, effects: &actions) }
    }

    // MARK: Batches

    /// The batch's window is over: its members, in order.
    func startBatch(_ run: BatchRunBase, group: ConcurrencyGroupID) -> [GroupState.FormingBatch.Member] {
        state.withLock { $0.startBatch(run, group: group) }
    }

    func leaveFormingBatch(_ run: BatchRunBase, ticket: UInt64, group: ConcurrencyGroupID) {
        mutate { state, actions in state.leaveFormingBatch(run, ticket: ticket, group: group, effects: &actions) }
    }

    func forgetBatchMember(ticket: UInt64, of batcher: ObjectIdentifier, group: ConcurrencyGroupID) {
        state.withLock { $0.forgetBatchMember(ticket: ticket, of: batcher, group: group) }
    }

    // MARK: Tasks

    func status(of id: TaskID) -> TaskStatus? {
        let now = clock.now
        return state.withLock { $0.status(of: id, now: now) }
    }

    var liveStatuses: [TaskStatus] {
        let now = clock.now
        return state.withLock { state in state.tasks.values.map { state.status(of: $0, now: now) } }
    }

    func result(of id: TaskID) -> (any Sendable)? {
        let now = clock.now
        return state.withLock { $0.results[id, now] }
    }

    func control(of id: TaskID) -> TaskControl? {
        state.withLock { $0.tasks[id]?.control }
    }

    /// Flags by id (a cancel is ``ControlFlags/interrupt``): a waiting task leaves its line at once, a running
    /// one's body is cancelled. Returns whether the task was live; throws for an unknown id.
    func request(_ flags: ControlFlags, for id: TaskID) throws -> Bool {
        let now = clock.now
        let control = try mutate { state, actions -> TaskControl? in
            guard let task = state.tasks[id] else {
                if state.finished[id, now] != nil { return nil }
                throw TaskLifecycle.unknown(id)
            }
            if flags.contains(.interrupt), case .waiting(let ticket) = task.phase, state.scheduling != nil {
                state.removeWaiting(ticket: ticket, group: task.group, error: CancellationError(), effects: &actions)
            }
            return task.control
        }
        guard let control else { return false }
        control.insert(flags)
        if flags.contains(.interrupt) { control.cancel() }
        return true
    }

    func register(_ id: TaskID, group: ConcurrencyGroupID, control: TaskControl) throws {
        let now = clock.now
        try mutate { state, actions in
            try state.register(id, group: group, control: control, now: now, effects: &actions)
        }
    }

    func startTracked(_ id: TaskID, slot: Int) throws {
        let now = clock.now
        try mutate { state, actions in try state.startTracked(id, slot: slot, now: now, effects: &actions) }
    }

    func report(_ id: TaskID, fraction: Double, step: String?) {
        mutate { state, actions in state.setProgress(of: id, fraction: fraction, step: step, effects: &actions) }
    }

    /// Adds a chunk to a running task's outputs; `false` when the task is not running or the chunk was
    /// dropped at once (larger than the byte budget). The byte count is read before the lock, and the values
    /// the window drops are released after it.
    func emitChunk(_ value: some PartialOutput, of id: TaskID) -> Bool {
        let bytes = max(0, value.outputByteCount)
        return mutate { state, actions in state.emitChunk(value, bytes: bytes, of: id, effects: &actions) }.kept
    }

    /// Replaces a running task's latest value; `false` when the task is not running or the value is larger
    /// than the byte budget.
    func emitLatest(_ value: some PartialOutput, of id: TaskID) -> Bool {
        let bytes = max(0, value.outputByteCount)
        return mutate { state, actions in state.emitLatest(value, bytes: bytes, of: id, effects: &actions) }.kept
    }

    func latestOutput(of id: TaskID) -> (any PartialOutput)? {
        let now = clock.now
        return state.withLock { $0.latestOutput(of: id, now: now) }
    }

    /// Moves a live task to the history and gives back what it held, in one step.
    func finish(
        _ id: TaskID, outcome: TaskStatus.Outcome, result: (any Sendable)?, bodyRan: Bool
    ) -> TaskStatus? {
        let now = clock.now
        // A result that says its size counts against the result history's byte budget, when there is one;
        // read before the lock.
        let resultBytes = measuresResults ? (result as? any PartialOutput)?.outputByteCount ?? 0 : 0
        return mutate { state, actions in
            state.finish(
                id, outcome: outcome, result: result, resultBytes: resultBytes, bodyRan: bodyRan, now: now,
                effects: &actions)
        }
    }

    // MARK: Update readers

    /// Subscribes to a live task, or hands back the final status of a finished one still remembered.
    func subscribe(_ subscription: UpdateSubscription) throws {
        let now = clock.now
        try state.withLock { state in
            if state.tasks[subscription.taskID] != nil {
                state.subscribe(subscription)
            } else if let final = state.finished[subscription.taskID, now] {
                subscription.final = final
            } else {
                throw TaskLifecycle.unknown(subscription.taskID)
            }
        }
    }

    /// Subscribes a reader of outputs, from chunk `nextChunk`.
    func subscribeToOutputs(_ subscription: UpdateSubscription, from nextChunk: Int) throws {
        let now = clock.now
        try state.withLock { try $0.subscribeToOutputs(subscription, from: nextChunk, now: now) }
    }

    func read(
        _ subscription: UpdateSubscription, parking continuation: CheckedContinuation<UpdateSubscription.Step, Never>
    ) {
        let now = clock.now
        let isCancelled = Task.isCancelled
        let step = mutate { state, actions in
            state.read(subscription, parking: continuation, isCancelled: isCancelled, now: now, effects: &actions)
        }
        if let step { continuation.resume(returning: step) }
    }

    /// Forgets a subscription (its sequence is gone, or its reading task was cancelled); a parked read ends.
    func unsubscribe(_ subscription: UpdateSubscription) {
        let parked = state.withLock { $0.unsubscribe(subscription) }
        parked?.resume(returning: .end)
    }

    private func scheduleFlush(of group: ConcurrencyGroupID) {
        let deadline = clock.now + positionUpdateInterval
        background.spawn { [weak self, clock] in
            try? await clock.sleep(until: deadline)
            self?.mutate { state, actions in state.flush(group, effects: &actions) }
        }
    }

    // MARK: Shutdown

    /// Fails every waiting call with ``CallQueueError/Code/closed`` and refuses later ones.
    func close() {
        mutate { state, actions in state.close(effects: &actions) }
    }

    /// Waits until the queue is closed and no call holds a slot; returns at once when it already is.
    /// Cancelling the waiting task ends the wait early.
    func drained() async {
        // The signal opens when a release drains the queue and stays open, so a drain between this check and
        // the wait is not missed.
        if inspect({ $0.isDrained }) { return }
        await drainSignal.wait()
    }

    /// Cancels every running tracked call: the grace period of a shutdown is over.
    func cancelRunning() {
        let controls = state.withLock { state in
            state.tasks.values.compactMap { task -> TaskControl? in
                if case .running = task.phase { return task.control }
                return nil
            }
        }
        for control in controls { control.cancel() }
    }

    // MARK: Cluster-wide groups

    /// Starts the group's sender: it asks the source for a ticket for each waiting call, one at a time, in
    /// arrival order, until none is left.
    private func startClusterSender(for group: ConcurrencyGroupID, source: any ClusterPermitSource) {
        background.spawn { [self] in
            while let next = state.withLock({ $0.nextClusterRequest(in: group) }) {
                let events = ClusterTicketEvents(scheduler: self, group: group, localTicket: next.ticket)
                do {
                    let ticket = try await source.enqueue(
                        ClusterRequest(group: group, taskID: next.taskID, events: events))
                    mutate { state, actions in
                        state.clusterEnqueued(next.ticket, in: group, as: ticket, effects: &actions)
                    }
                } catch {
                    leaveLine(ticket: next.ticket, group: group, error: error)
                }
            }
        }
    }

    func clusterGranted(_ events: ClusterTicketEvents, ticket: ClusterTicket, permit: ClusterPermit) {
        let now = clock.now
        mutate { state, actions in
            state.clusterGranted(
                events.localTicket, in: events.group, ticket: ticket, permit: permit, now: now, effects: &actions)
        }
    }

    func clusterPositionChanged(
        _ events: ClusterTicketEvents, position: Int, queueSize: Int, runTimeEstimate: Duration?
    ) {
        mutate { state, actions in
            state.clusterPositionChanged(
                events.localTicket, in: events.group, position: position, queueSize: queueSize,
                runTimeEstimate: runTimeEstimate, effects: &actions)
        }
    }

    func clusterLost(_ events: ClusterTicketEvents, error: CallQueueError) {
        mutate { state, actions in
            state.clusterLost(events.localTicket, in: events.group, error: error, effects: &actions)
        }
    }

    /// Another replica asked to cancel the call.
    func clusterCancelRequested(_ events: ClusterTicketEvents) {
        guard let id = state.withLock({ $0.clusterTaskID(events.localTicket, in: events.group) }) else { return }
        _ = try? request(.interrupt, for: id)
    }

    func clusterPermit(of id: TaskID) -> ClusterPermit? {
        state.withLock { $0.clusterPermit(of: id) }
    }

    // MARK: Running the actions

    /// Runs a mutation's actions, in order, with no lock held.
    private func perform(_ actions: SchedulerActions) {
        for action in actions.list {
            switch action {
            case .observe(let status): observer?.taskDidChange(status)
            case .stopTimer(let timer): timer.cancel()
            case .fail(let continuation, let error): continuation.resume(throwing: error)
            case .grant(let continuation, let grant): continuation.resume(returning: grant)
            case .wakeReader(let reader): reader.resume(returning: .woken)
            case .scheduleFlush(let group): scheduleFlush(of: group)
            case .cancel(let control): control.cancel()
            case .launchBatch(let run, let held): run.launch(held)
            case .startBatch(let run): run.startNow()
            case .leaveCluster(let source, let ticket, let finished): source.leave(ticket, finished: finished)
            case .startClusterSender(let group, let source): startClusterSender(for: group, source: source)
            case .drained: drainSignal.open()
            }
        }
    }
}
