// Waiting and granting: a parked caller, the one settle path, the start of a call and the serving of a line.

extension LifecycleState {
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
    mutating func start(
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
        group.line.released(ticket: held.ticket)
        runningInAll -= 1
        if scheduling?.processWideLimit != nil { processRunning -= 1 }
        revision += 1
        serve(group, now: now, effects: &effects)
        releaseIfIdle(group)
        if isDrained { effects.append(.drained) }
    }
}
