// Progress and finish: a running call's reports, its move to the history, and the close of the queue.

extension LifecycleState {
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
        resultBytes: Int = 0,
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
            version: revision,
            fairnessKey: task.fairnessKey
        )
        for subscription in task.subscriptions.values { subscription.final = status }
        finished.record(status, for: id, at: now)
        if let outputs = task.outputs, outputs.latest != nil || outputs.nextIndex > 0 {
            let kept = FinishedOutputs(latest: outputs.latest, chunkCount: outputs.nextIndex)
            finishedOutputs.record(kept, for: id, at: now)
        }
        if let result {
            results.record(result, for: id, at: now, bytes: max(0, resultBytes))
        }
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
}
