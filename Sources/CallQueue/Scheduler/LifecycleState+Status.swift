// Statuses: what a task reads as, computed from the state when asked.

extension LifecycleState {
    func status(of id: TaskID, now: ContinuousClock.Instant) -> TaskStatus? {
        guard let task = tasks[id] else { return finished[id, now] }
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
            if group.isScheduled, !processPermitFree, let head = group.line.head, head.ticket == ticket,
                group.fits(weight: head.weight), let limit = scheduling?.processWideLimit
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
                version: revision,
                fairnessKey: task.fairnessKey
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
                version: revision,
                fairnessKey: task.fairnessKey
            )
        }
    }

    /// The task's status for the observer, when it is live.
    func observe(_ id: TaskID, now: ContinuousClock.Instant, into effects: inout Effects) {
        guard settings.observes else { return }
        if let status = status(of: id, now: now) { effects.append(.observe(status)) }
    }
}
