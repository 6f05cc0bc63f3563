/// The queue's bookkeeping, behind one lock: groups, live tasks, history, subscribers.
///
/// Nothing here suspends or calls out: methods return what to deliver (stream updates, observer events),
/// and ``CallQueue`` delivers it after the lock is dropped.
struct Registry: Sendable {
    struct LiveTask: Sendable {
        let id: TaskID
        let group: ConcurrencyGroupID
        let control: TaskControl
        let queuedAt: ContinuousClock.Instant
        var phase: Phase
    }

    enum Phase: Sendable {
        /// Waiting on `semaphore` (nil: admitted, about to wait) with `ticket`.
        case waiting(semaphore: FIFOSemaphore?, ticket: FIFOSemaphore.Ticket?, holder: TaskStatus.Holder)
        case running(slot: Int, startedAt: ContinuousClock.Instant, progress: Double?, step: String?)
    }

    struct Deliveries: Sendable {
        var updates: [(AsyncStream<TaskStatus>.Continuation, TaskStatus)] = []
        var finished: [AsyncStream<TaskStatus>.Continuation] = []
        var observed: [TaskStatus] = []
    }

    let configuration: CallQueue.Configuration
    var isClosed = false
    /// Everything kept per group, under one key: each call looks its group up once per step.
    struct GroupState: Sendable {
        let group: ConcurrencyGroup
        /// Admitted, not yet started.
        var waiting = 0
        /// Running, for the time until a slot frees.
        var running: Set<TaskID> = []
        var estimator: RunTimeEstimator
    }

    var groups: [ConcurrencyGroupID: GroupState] = [:]
    var live: [TaskID: LiveTask] = [:]
    var finished: [TaskID: TaskStatus] = [:]
    var finishedOrder: [TaskID] = []
    var results: [TaskID: any Sendable] = [:]
    var resultOrder: [TaskID] = []
    var subscribers: [TaskID: [Int: AsyncStream<TaskStatus>.Continuation]] = [:]
    var nextSubscriberKey = 0

    init(configuration: CallQueue.Configuration) {
        self.configuration = configuration
    }

    // MARK: Groups

    mutating func group(_ id: ConcurrencyGroupID) -> ConcurrencyGroup {
        if let state = groups[id] { return state.group }
        let group = ConcurrencyGroup(id: id, configuration: configuration.configuration(of: id))
        groups[id] = GroupState(group: group, estimator: RunTimeEstimator(prior: configuration.initialRunTimeEstimate))
        return group
    }

    func estimate(for group: ConcurrencyGroupID) -> Duration {
        groups[group]?.estimator.estimate ?? configuration.initialRunTimeEstimate
    }

    /// Gradio's wait formula with our estimate: the time until a slot frees (when all are taken), plus one
    /// run per `limit` tasks ahead.
    func estimatedWait(group: ConcurrencyGroup, position: Int, now: ContinuousClock.Instant) -> Duration {
        guard let limit = group.configuration.limit.count else { return .zero }
        let estimate = estimate(for: group.id)
        let running = groups[group.id]?.running ?? []
        var untilSlotFrees = Duration.zero
        if running.count >= limit {
            let soonest = running.compactMap { id -> Duration? in
                guard case .running(_, let startedAt, _, _) = live[id]?.phase else { return nil }
                return estimate - (now - startedAt)
            }.min()
            untilSlotFrees = max(.zero, soonest ?? .zero)
        }
        return untilSlotFrees + estimate * (Double(position) / Double(limit))
    }

    // MARK: Admission

    /// Registers a task as queued, or throws without registering anything.
    mutating func admit(
        _ id: TaskID,
        group groupID: ConcurrencyGroupID,
        weight: Int?,
        control: TaskControl,
        now: ContinuousClock.Instant
    ) throws -> ConcurrencyGroup {
        if isClosed {
            throw CallQueueError(.closed, "the call queue is closed", group: groupID, taskID: id)
        }
        if live[id] != nil {
            throw CallQueueError(.duplicateTask, "a live task already has the id '\(id)'", group: groupID, taskID: id)
        }
        let group = group(groupID)
        let config = group.configuration
        if let weight {
            guard let budget = config.budget else {
                throw CallQueueError(
                    .invalidArgument,
                    "the call declares weight \(weight), but group '\(groupID)' has no budget",
                    group: groupID,
                    taskID: id
                )
            }
            guard weight >= 1 && weight <= budget else {
                throw CallQueueError(
                    .invalidArgument,
                    "weight \(weight) is outside 1...\(budget), the budget of group '\(groupID)'",
                    group: groupID,
                    taskID: id
                )
            }
        }
        let waitingInGroup = groups[groupID]?.waiting ?? 0
        let queuedInGroup = queued(in: groupID, limit: config.limit)
        if let maxSize = config.maxQueueSize, queuedInGroup + 1 > maxSize, waitsForSlot(groupID, limit: config.limit) {
            throw CallQueueError(
                .queueFull,
                "group '\(groupID)' is full: \(queuedInGroup) calls waiting, at most \(maxSize), limit \(config.limit)",
                group: groupID,
                taskID: id,
                queueSize: queuedInGroup,
                maxQueueSize: maxSize
            )
        }
        if let maxSize = configuration.maxQueueSize, waitsForSlot(groupID, limit: config.limit) {
            let queuedInAll = groups.values.reduce(0) {
                $0 + queued(in: $1.group.id, limit: $1.group.configuration.limit)
            }
            if queuedInAll + 1 > maxSize {
                throw CallQueueError(
                    .queueFull,
                    "the call queue is full: \(queuedInAll) calls waiting in all groups, at most \(maxSize)",
                    group: groupID,
                    taskID: id,
                    queueSize: queuedInAll,
                    maxQueueSize: maxSize
                )
            }
        }
        if let maxWait = configuration.maxEstimatedWait {
            let wait = estimatedWait(group: group, position: waitingInGroup, now: now)
            if wait > maxWait {
                throw CallQueueError(
                    .waitTooLong,
                    "group '\(groupID)': the estimated wait \(PerfStats.timeText(wait)) exceeds \(PerfStats.timeText(maxWait))",
                    group: groupID,
                    taskID: id
                )
            }
        }
        live[id] = LiveTask(
            id: id,
            group: groupID,
            control: control,
            queuedAt: now,
            phase: .waiting(semaphore: nil, ticket: nil, holder: .group)
        )
        groups[groupID]?.waiting += 1
        return group
    }

    /// Calls of a group that are admitted and will have to wait: those beyond the free slots. A call that
    /// will start at once is not queued, so a queue size of 0 still admits calls while a slot is free.
    func queued(in group: ConcurrencyGroupID, limit: ConcurrencyLimit) -> Int {
        guard let limit = limit.count, let state = groups[group] else { return 0 }
        let free = max(0, limit - state.running.count)
        return max(0, state.waiting - free)
    }

    /// Whether one more call of the group would have to wait for a slot.
    func waitsForSlot(_ group: ConcurrencyGroupID, limit: ConcurrencyLimit) -> Bool {
        guard let count = limit.count, let state = groups[group] else { return false }
        return state.waiting + state.running.count >= count
    }

    // MARK: Transitions

    mutating func setWaiting(
        _ id: TaskID, on semaphore: FIFOSemaphore, ticket: FIFOSemaphore.Ticket, holder: TaskStatus.Holder
    ) {
        live[id]?.phase = .waiting(semaphore: semaphore, ticket: ticket, holder: holder)
    }

    mutating func start(_ id: TaskID, slot: Int, now: ContinuousClock.Instant) {
        guard let task = live[id] else { return }
        live[id]?.phase = .running(slot: slot, startedAt: now, progress: nil, step: nil)
        groups[task.group]?.waiting -= 1
        groups[task.group]?.running.insert(id)
    }

    mutating func setProgress(of id: TaskID, fraction: Double, step: String?) {
        guard case .running(let slot, let startedAt, _, _) = live[id]?.phase else { return }
        live[id]?.phase = .running(slot: slot, startedAt: startedAt, progress: fraction, step: step)
    }

    /// Moves a task to the history. Returns its final status.
    mutating func finish(
        _ id: TaskID,
        outcome: TaskStatus.Outcome,
        result: (any Sendable)?,
        now: ContinuousClock.Instant
    ) -> TaskStatus? {
        guard let task = live.removeValue(forKey: id) else { return nil }
        var queuedFor = now - task.queuedAt
        var ranFor = Duration.zero
        var started = false
        switch task.phase {
        case .waiting:
            groups[task.group]?.waiting -= 1
        case .running(_, let startedAt, _, _):
            queuedFor = startedAt - task.queuedAt
            ranFor = now - startedAt
            started = true
            groups[task.group]?.running.remove(id)
            if outcome != .cancelled {
                groups[task.group]?.estimator.record(ranFor)
            }
        }
        let status = TaskStatus(
            id: id,
            group: task.group,
            state: .finished(.init(outcome: outcome, queuedFor: queuedFor, ranFor: ranFor, started: started))
        )
        remember(status)
        if let result, configuration.resultHistory > 0 {
            results[id] = result
            resultOrder.append(id)
            if resultOrder.count > configuration.resultHistory {
                results[resultOrder.removeFirst()] = nil
            }
        }
        return status
    }

    private mutating func remember(_ status: TaskStatus) {
        guard configuration.finishedTaskHistory > 0 else { return }
        if finished.updateValue(status, forKey: status.id) == nil {
            finishedOrder.append(status.id)
        }
        if finishedOrder.count > configuration.finishedTaskHistory {
            finished[finishedOrder.removeFirst()] = nil
        }
    }

    // MARK: Status

    func status(of id: TaskID, now: ContinuousClock.Instant, processLimit: FIFOSemaphore?) -> TaskStatus? {
        guard let task = live[id] else { return finished[id] }
        let estimate = estimate(for: task.group)
        switch task.phase {
        case .waiting(let semaphore, let ticket, let holder):
            // Admitted but not yet in a semaphore's queue, it is about to join the group's queue at the back.
            let queue = semaphore ?? groups[task.group]?.group.slots
            let waiting = queue?.snapshot.waiting ?? 0
            let position: Int
            let queueSize: Int
            if let ticket, let queue, let found = queue.position(of: ticket) {
                (position, queueSize) = (found, waiting)
            } else {
                (position, queueSize) = (waiting, waiting + 1)
            }
            let wait: Duration
            if holder == .processLimit, let processLimit {
                wait = estimate * (Double(position + 1) / Double(processLimit.permits))
            } else {
                wait = groups[task.group].map { estimatedWait(group: $0.group, position: position, now: now) } ?? .zero
            }
            return TaskStatus(
                id: id,
                group: task.group,
                state: .queued(
                    .init(
                        position: position,
                        queueSize: queueSize,
                        heldBy: holder,
                        estimatedWait: wait,
                        eta: wait + estimate
                    )
                )
            )
        case .running(let slot, let startedAt, let progress, let step):
            let elapsed = now - startedAt
            let eta: Duration
            if let progress, progress > 0 {
                eta = max(.zero, elapsed * (1 / progress) - elapsed)
            } else {
                eta = max(.zero, estimate - elapsed)
            }
            return TaskStatus(
                id: id,
                group: task.group,
                state: .running(.init(slot: slot, progress: progress, step: step, elapsed: elapsed, eta: eta))
            )
        }
    }

    // MARK: Subscribers

    mutating func subscribe(_ id: TaskID, _ continuation: AsyncStream<TaskStatus>.Continuation) -> Int {
        nextSubscriberKey += 1
        subscribers[id, default: [:]][nextSubscriberKey] = continuation
        return nextSubscriberKey
    }

    mutating func unsubscribe(_ id: TaskID, key: Int) {
        subscribers[id]?[key] = nil
        if subscribers[id]?.isEmpty == true { subscribers[id] = nil }
    }

    /// Updates for the subscribers of `ids`, and for every subscribed waiting task of `positionsOf` (whose
    /// positions just moved).
    func deliveries(
        for ids: [TaskID],
        positionsOf group: ConcurrencyGroupID? = nil,
        now: ContinuousClock.Instant,
        processLimit: FIFOSemaphore?
    ) -> Deliveries {
        var deliveries = Deliveries()
        var targets = ids
        if let group {
            for id in subscribers.keys where !ids.contains(id) {
                if let task = live[id], task.group == group, case .waiting = task.phase { targets.append(id) }
            }
        }
        for id in targets {
            guard let continuations = subscribers[id], !continuations.isEmpty,
                let status = status(of: id, now: now, processLimit: processLimit)
            else { continue }
            for continuation in continuations.values {
                deliveries.updates.append((continuation, status))
            }
        }
        return deliveries
    }

    /// A task's final status goes to its subscribers, whose streams then end, and to the observer.
    mutating func deliveriesForFinished(_ status: TaskStatus) -> Deliveries {
        var deliveries = Deliveries()
        for continuation in (subscribers.removeValue(forKey: status.id) ?? [:]).values {
            deliveries.updates.append((continuation, status))
            deliveries.finished.append(continuation)
        }
        if configuration.observer != nil { deliveries.observed.append(status) }
        return deliveries
    }

    /// The updates for `id`'s subscribers (and, with `positionsOf`, for the waiting tasks that moved), plus
    /// `id`'s status for the observer when there is one.
    func deliveriesWithObserver(
        for id: TaskID,
        positionsOf group: ConcurrencyGroupID? = nil,
        now: ContinuousClock.Instant,
        processLimit: FIFOSemaphore?
    ) -> Deliveries {
        var result = deliveries(for: [id], positionsOf: group, now: now, processLimit: processLimit)
        if configuration.observer != nil, let status = status(of: id, now: now, processLimit: processLimit) {
            result.observed.append(status)
        }
        return result
    }
}
