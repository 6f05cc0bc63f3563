// Batches in the state: a granted member forms a batch that holds its slot; the batcher's waiting members are
// pulled into it in line order, and members that arrive while it still has room join it at admission. The
// membership lives here, under the one lock, until the batch starts its body: then it is handed to the batch.

extension LifecycleState {
    /// A batcher's member was granted a slot: it forms a batch that holds the slot, with itself as its first
    /// member, and takes the batcher's waiting members in line order. The batch's task is launched after the
    /// lock is dropped. Returns the batch.
    mutating func formBatch(
        ticket: UInt64, taskID: TaskID?, input: (any Sendable)?, batcher: GroupState.BatcherTag,
        held: inout Held, now: ContinuousClock.Instant, effects: inout Effects
    ) -> BatchRunBase {
        let run = batcher.makeRun()
        held.batch = run
        guard let group = groups[held.group] else { return run }
        var forming = GroupState.FormingBatch(run: run, batcher: batcher, held: held, members: [])
        if let taskID, let input {
            forming.members.append(.init(ticket: ticket, taskID: taskID, input: input))
            markInBatch(taskID)
        }
        let runID = ObjectIdentifier(run)
        group.formingBatches[runID] = forming
        pullWaitingMembers(into: runID, group: held.group, now: now, effects: &effects)
        if let room = group.formingBatches[runID]?.room, room > 0 {
            group.openBatches[batcher.id] = runID
        } else {
            effects.append(.startBatch(run))  // full already: no window to wait out
        }
        effects.append(.launchBatch(run, held))
        return run
    }

    /// The batcher's forming batch with room that a new member joins at admission, if there is one.
    func openBatch(of batcher: GroupState.BatcherTag, in groupID: ConcurrencyGroupID) -> ObjectIdentifier? {
        guard let group = groups[groupID], let runID = group.openBatches[batcher.id],
            let forming = group.formingBatches[runID], forming.room > 0
        else { return nil }
        return runID
    }

    /// A newly admitted member joins the forming batch `runID`: it runs with it, in its slot.
    mutating func join(
        _ runID: ObjectIdentifier, ticket: UInt64, taskID: TaskID, input: any Sendable,
        group groupID: ConcurrencyGroupID,
        now: ContinuousClock.Instant, effects: inout Effects
    ) -> Held? {
        guard let group = groups[groupID], var forming = group.formingBatches[runID] else { return nil }
        forming.members.append(.init(ticket: ticket, taskID: taskID, input: input))
        group.formingBatches[runID] = forming
        startInBatch(taskID, ticket: ticket, slot: forming.held.slot, now: now)
        if forming.room == 0 { close(forming, runID, group: group, effects: &effects) }
        wake(taskID, effects: &effects)
        return Held(group: groupID, ticket: ticket, slot: forming.held.slot, weight: 0, batch: forming.run)
    }

    /// Pulls the batcher's waiting members out of the line, in the line's order, into the forming batch while
    /// it has room. They start now; each parked member is resumed with the batch. In arrival order that is a
    /// walk from the front of the batcher's list; under fair share, its waiting members are sorted by place
    /// (O(m log m) for m waiting members).
    private mutating func pullWaitingMembers(
        into runID: ObjectIdentifier, group groupID: ConcurrencyGroupID, now: ContinuousClock.Instant,
        effects: inout Effects
    ) {
        guard let group = groups[groupID], var forming = group.formingBatches[runID],
            var tickets = group.batchMembers[forming.batcher.id]
        else { return }
        var consumed = 0
        var pulled: [TaskID] = []
        var headLeft = false
        let isFair = group.fairShare != nil
        for ticket in isFair ? group.line.inLineOrder(tickets) : tickets {
            if forming.room == 0 { break }
            consumed += 1
            guard let (waiter, wasFirst) = group.line.remove(ticket: ticket) else { continue }
            headLeft = headLeft || wasFirst
            waitingInAll -= 1
            let entry = waiter.continuation
            leaveClusterTicket(of: entry, in: groupID, effects: &effects)
            guard let taskID = entry.taskID, let input = entry.input else {
                settle(entry, ticket: ticket, .failed(CancellationError()), effects: &effects)
                continue
            }
            forming.members.append(.init(ticket: ticket, taskID: taskID, input: input))
            pulled.append(taskID)
            startInBatch(taskID, ticket: ticket, slot: forming.held.slot, now: now)
            settle(
                entry, ticket: ticket,
                .granted(Grant(slot: forming.held.slot, startObserved: false, batch: forming.run)), effects: &effects)
        }
        if isFair {
            tickets.removeAll { !group.line.contains(ticket: $0) }
        } else {
            tickets.removeFirst(consumed)
        }
        group.batchMembers[forming.batcher.id] = tickets.isEmpty ? nil : tickets
        group.formingBatches[runID] = forming
        revision += 1
        for taskID in pulled { wake(taskID, effects: &effects) }
        if !pulled.isEmpty { moved(groupID, count: pulled.count, effects: &effects) }
        if headLeft { serve(groupID, now: now, effects: &effects) }
    }

    /// The batch's window is over: it takes no more members, and its membership is handed to it, in order.
    mutating func startBatch(_ run: BatchRunBase, group groupID: ConcurrencyGroupID) -> [GroupState.FormingBatch.Member]
    {
        let runID = ObjectIdentifier(run)
        guard let group = groups[groupID], let forming = group.formingBatches.removeValue(forKey: runID) else {
            return []
        }
        if group.openBatches[forming.batcher.id] == runID { group.openBatches[forming.batcher.id] = nil }
        revision += 1
        return forming.members
    }

    /// A member of a forming batch was cancelled: it leaves the batch, and its place is free for another.
    /// A batch left with no member stops waiting for companions and gives its slot back.
    mutating func leaveFormingBatch(
        _ run: BatchRunBase, ticket: UInt64, group groupID: ConcurrencyGroupID, effects: inout Effects
    ) {
        let runID = ObjectIdentifier(run)
        guard let group = groups[groupID], var forming = group.formingBatches[runID],
            let index = forming.members.firstIndex(where: { $0.ticket == ticket })
        else { return }
        forming.members.remove(at: index)
        group.formingBatches[runID] = forming
        if forming.members.isEmpty { close(forming, runID, group: group, effects: &effects) }
    }

    /// The forming batch takes no more members: it is full, or every member left. Its task starts now.
    private func close(
        _ forming: GroupState.FormingBatch, _ runID: ObjectIdentifier, group: GroupState, effects: inout Effects
    ) {
        if group.openBatches[forming.batcher.id] == runID { group.openBatches[forming.batcher.id] = nil }
        effects.append(.startBatch(forming.run))
    }

    private mutating func startInBatch(
        _ taskID: TaskID, ticket: UInt64, slot: Int, now: ContinuousClock.Instant
    ) {
        guard let task = tasks[taskID] else { return }
        task.phase = .running(Running(ticket: ticket, slot: slot, weight: 0, startedAt: now, inBatch: true))
        task.version += 1
        revision += 1
    }

    /// The member that formed the batch: from now on the batch, not its task, holds the slot.
    private mutating func markInBatch(_ taskID: TaskID) {
        guard let task = tasks[taskID], case .running(var running) = task.phase else { return }
        running.inBatch = true
        task.phase = .running(running)
    }

    /// Drops a batcher's record of a member that left (served, cancelled, timed out).
    mutating func forgetBatchMember(ticket: UInt64, of batcher: ObjectIdentifier, group groupID: ConcurrencyGroupID) {
        guard var tickets = groups[groupID]?.batchMembers[batcher] else { return }
        if let index = tickets.firstIndex(of: ticket) { tickets.remove(at: index) }
        groups[groupID]?.batchMembers[batcher] = tickets.isEmpty ? nil : tickets
        releaseIfIdle(groupID)
    }
}
