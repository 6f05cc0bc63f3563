extension LifecycleState {
    // MARK: Update subscriptions

    mutating func subscribe(_ subscription: UpdateSubscription) {
        tasks[subscription.taskID]?.subscriptions[ObjectIdentifier(subscription)] = subscription
    }

    /// Forgets a subscription; returns the reader parked on it, to be ended.
    mutating func unsubscribe(
        _ subscription: UpdateSubscription
    ) -> CheckedContinuation<UpdateSubscription.Step, Never>? {
        let key = ObjectIdentifier(subscription)
        if let task = tasks[subscription.taskID] {
            tasks[subscription.taskID]?.subscriptions[key] = nil
            groups[task.group]?.parkedReaders[key] = nil
            releaseIfIdle(task.group)
        }
        subscription.outputs?.parkedReaders[key] = nil
        subscription.isDone = true
        defer { subscription.parked = nil }
        return subscription.parked
    }

    /// The subscriber's next step: a newer status, the end, or `nil` after parking `continuation` until
    /// something changes.
    mutating func read(
        _ subscription: UpdateSubscription,
        parking continuation: CheckedContinuation<UpdateSubscription.Step, Never>,
        isCancelled: Bool,
        now: ContinuousClock.Instant,
        effects: inout Effects
    ) -> UpdateSubscription.Step? {
        if subscription.isDone || isCancelled {
            _ = unsubscribe(subscription)
            return .end
        }
        // A second task reads while the first waits: one consumer per sequence. The second ends; the first
        // goes on.
        if subscription.parked != nil { return .secondConsumer }
        let nothing = OutputBuffer.Delta.nothing(at: subscription.nextChunk)
        // Only the group's counters are read here: a copy of the group alive while its reader table changes
        // below would copy that table on every read.
        guard let task = tasks[subscription.taskID], let moved = groups[task.group]?.moved,
            let flushPending = groups[task.group]?.flushPending
        else {
            // Finished: its last status, once; a reader of outputs gets what it has not read with it.
            subscription.isDone = true
            guard let final = subscription.final ?? finished[subscription.taskID, now] else { return .end }
            if subscription.outputs != nil { return .outputs(final, takeOutputs(for: subscription) ?? nothing) }
            return .status(final)
        }
        let isCluster = groups[task.group]?.cluster != nil
        let outputs = takeOutputs(for: subscription)
        if subscription.lastVersion != task.version {
            let status = status(of: task, now: now)
            subscription.lastVersion = task.version
            subscription.positionDue = false
            subscription.lastPosition = status.state.queued.map { ($0.position, $0.queueSize) }
            if let queued = status.state.queued {
                subscription.wakeAt = nextDue(
                    moved: moved, position: queued.position, reported: queued.position, isCluster)
            }
            return subscription.outputs != nil ? .outputs(status, outputs ?? nothing) : .status(status)
        }
        if let outputs { return .outputs(nil, outputs) }
        let isWaiting: Bool
        if case .waiting = task.phase { isWaiting = true } else { isWaiting = false }
        if isWaiting && moved >= subscription.wakeAt
            && (settings.positionUpdateInterval <= .zero || subscription.positionDue)
        {
            subscription.positionDue = false
            let status = status(of: task, now: now)
            if let queued = status.state.queued {
                if shouldReport(queued, after: subscription.lastPosition) {
                    subscription.lastPosition = (queued.position, queued.queueSize)
                    subscription.wakeAt = nextDue(
                        moved: moved, position: queued.position, reported: queued.position, isCluster)
                    return subscription.outputs != nil ? .outputs(status, nothing) : .status(status)
                }
                subscription.wakeAt = nextDue(
                    moved: moved, position: queued.position, reported: subscription.lastPosition?.position, isCluster)
            }
        }
        subscription.parked = continuation
        if let buffer = subscription.outputs { buffer.parkedReaders[ObjectIdentifier(subscription)] = subscription }
        if isWaiting {
            let group = groups[task.group]!
            group.parkedReaders[ObjectIdentifier(subscription)] = subscription
            group.wakeups.add(subscription, due: subscription.wakeAt)
            if group.wakeups.count > 2 * group.parkedReaders.count + 64 {
                group.wakeups.compact(keeping: group.parkedReaders.values)
            }
            // A move it has not read yet: make sure a flush comes for it.
            if moved >= subscription.wakeAt && settings.positionUpdateInterval > .zero && !flushPending {
                group.flushPending = true
                effects.append(.scheduleFlush(task.group))
            }
        }
        return nil
    }

    /// Whether a waiting reader that last heard `reported` is told `queued`: with no
    /// ``Settings/positionUpdateFraction``, any change of place or queue size; with one, a move of at least
    /// that fraction of the place last reported, and of at least one place.
    private func shouldReport(_ queued: TaskStatus.Queued, after reported: (position: Int, queueSize: Int)?) -> Bool {
        guard let reported else { return true }
        guard settings.positionUpdateFraction > 0 else {
            return reported != (queued.position, queued.queueSize)
        }
        return abs(reported.position - queued.position) >= reportableMove(from: reported.position)
    }

    /// The least move worth reporting to a reader last told `position`.
    private func reportableMove(from position: Int) -> Int {
        max(1, Int(Double(position) * settings.positionUpdateFraction))
    }

    /// The group's `moved` count at which a reader now at `position`, last told `reported`, is next worth
    /// waking. Each call leaving a line moves a place behind it by one at most, so the reader cannot reach a
    /// reportable place before that many more have left. A cluster-wide group's places come from its
    /// source, not from departures here: its readers are due at the next report.
    private func nextDue(moved: UInt64, position: Int, reported: Int?, _ isCluster: Bool) -> UInt64 {
        guard !isCluster, settings.positionUpdateFraction > 0, let reported else { return moved &+ 1 }
        let target = reported - reportableMove(from: reported)
        return moved &+ UInt64(max(1, position - target))
    }

    // MARK: Hand-tracked tasks (a TaskLifecycle used by itself)

    mutating func register(
        _ id: TaskID, group: ConcurrencyGroupID, control: TaskControl, now: ContinuousClock.Instant,
        effects: inout Effects
    ) throws {
        if scheduling != nil {
            throw CallQueueError(
                .invalidArgument,
                "this lifecycle belongs to a CallQueue, whose calls register their own tasks; use the queue's "
                    + "runGPUCall or submit, or a TaskLifecycle of your own",
                group: group, taskID: id)
        }
        _ = try admit(group: group, weight: nil, task: (id, control), now: now, effects: &effects)
    }

    mutating func startTracked(_ id: TaskID, slot: Int, now: ContinuousClock.Instant, effects: inout Effects) throws {
        guard let task = tasks[id] else {
            throw CallQueueError(.unknownTask, "no live task has the id '\(id)'", taskID: id)
        }
        guard case .waiting(let ticket) = task.phase else {
            throw CallQueueError(.invalidArgument, "task '\(id)' has already started", taskID: id)
        }
        if groups[task.group]?.line.remove(ticket: ticket) != nil {
            waitingInAll -= 1
        }
        groups[task.group]?.running[ticket] = now
        task.phase = .running(Running(ticket: ticket, slot: slot, weight: 0, startedAt: now))
        task.version += 1
        revision += 1
        wake(id, effects: &effects)
        moved(task.group, effects: &effects)
        observe(id, now: now, into: &effects)
    }
}
