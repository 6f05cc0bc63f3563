extension LifecycleState {
    /// A granted batcher member becomes the leader of a batch: from now on the batch, not the member's task,
    /// holds the slot. Returns what the batch gives back when its body returns.
    mutating func lead(_ id: TaskID) -> Held? {
        guard var task = tasks[id], case .running(var running) = task.phase else { return nil }
        running.inBatch = true
        task.phase = .running(running)
        tasks[id] = task
        return Held(group: task.group, ticket: running.ticket, slot: running.slot, weight: running.weight)
    }

    /// Pulls up to `limit` waiting members of a batcher out of their group's line, in arrival order, into the
    /// batch `run` that holds `slot`. They start now; each parked member is resumed with the batch.
    mutating func pullBatchMembers(
        of batcher: ObjectIdentifier,
        group groupID: ConcurrencyGroupID,
        limit: Int,
        slot: Int,
        run: BatchRunBase,
        now: ContinuousClock.Instant,
        effects: inout Effects
    ) -> [(ticket: UInt64, taskID: TaskID)] {
        guard limit > 0, var tickets = groups[groupID]?.batchMembers[batcher] else { return [] }
        groups[groupID]?.batchMembers[batcher] = nil
        var pulled: [(ticket: UInt64, taskID: TaskID)] = []
        var consumed = 0
        var headLeft = false
        for ticket in tickets {
            if pulled.count == limit { break }
            consumed += 1
            // In place: a copy of the group alive here would copy the whole ring on the first removal.
            guard let (waiter, wasFirst) = groups[groupID]?.line.remove(ticket: ticket) else { continue }
            headLeft = headLeft || wasFirst
            waitingInAll -= 1
            leaveClusterTicket(of: waiter.continuation, in: groupID, effects: &effects)
            if let timer = waiter.continuation.timer { effects.timers.append(timer) }
            guard let taskID = waiter.continuation.taskID else { continue }
            pulled.append((ticket, taskID))
            if var task = tasks[taskID] {
                task.phase = .running(
                    Running(ticket: ticket, slot: slot, weight: 0, startedAt: now, inBatch: true))
                task.version += 1
                tasks[taskID] = task
            }
            if let continuation = waiter.continuation.continuation {
                parkedWaiters -= 1
                effects.grants.append((continuation, Grant(slot: slot, startObserved: false, batch: run)))
            } else {
                early[ticket] = .granted(slot: slot, batch: run)
            }
        }
        tickets.removeFirst(consumed)
        if !tickets.isEmpty { groups[groupID]?.batchMembers[batcher] = tickets }
        revision += 1
        for (_, taskID) in pulled { wake(taskID, effects: &effects) }
        if !pulled.isEmpty { moved(groupID, count: pulled.count, effects: &effects) }
        if headLeft { serve(groupID, now: now, effects: &effects) }
        return pulled
    }

    /// Drops a batcher's record of members that all left (cancelled, timed out) without a batch forming.
    mutating func forgetBatchMember(ticket: UInt64, of batcher: ObjectIdentifier, group groupID: ConcurrencyGroupID) {
        guard var tickets = groups[groupID]?.batchMembers[batcher] else { return }
        if let index = tickets.firstIndex(of: ticket) { tickets.remove(at: index) }
        groups[groupID]?.batchMembers[batcher] = tickets.isEmpty ? nil : tickets
        releaseIfIdle(groupID)
    }
}
