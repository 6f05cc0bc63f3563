// Positions: departures counted per group, and the parked readers woken when they are due.

extension LifecycleState {
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
            task.outputs?.parkedReaders[ObjectIdentifier(subscription)] = nil
        }
    }
}
