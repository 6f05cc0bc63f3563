// Admission: a call joins its group's line, or is granted at once, in one step with its registration.

extension LifecycleState {
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
        order: LineOrder = .arrival,
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
        let reportedKey = group.fairShare?.reportsKeys == true ? order.key : nil
        if let batcher, let task, let input, let runID = openBatch(of: batcher, in: groupID) {
            // Its batcher's batch is forming and has room: it joins it, and waits in no line.
            nextTicket += 1
            revision += 1
            tasks[task.id] = LiveTask(
                id: task.id, group: groupID, control: task.control, queuedAt: now, phase: .waiting(ticket: nextTicket),
                fairnessKey: reportedKey)
            group.liveTasks += 1
            observe(task.id, now: now, into: &effects)
            if let held = join(
                runID, ticket: nextTicket, taskID: task.id, input: input, group: groupID, now: now, effects: &effects)
            {
                return .granted(held)
            }
        }
        let (weight, wouldWait, isScheduled) = try admissionDecision(
            group: group, weight: requestedWeight, order: order, taskID: task?.id,
            batchSize: batcher?.maxBatchSize ?? 1, now: now)
        nextTicket += 1
        revision += 1
        let ticket = nextTicket
        if let task {
            tasks[task.id] = LiveTask(
                id: task.id, group: groupID, control: task.control, queuedAt: now, phase: .waiting(ticket: ticket),
                fairnessKey: reportedKey)
            group.liveTasks += 1
            observe(task.id, now: now, into: &effects)
        }
        if isScheduled && !wouldWait {
            group.line.startWithoutWaiting(ticket: ticket, order: order)
            var held = start(ticket: ticket, taskID: task?.id, weight: weight, in: group, now: now)
            if let batcher {
                _ = formBatch(
                    ticket: ticket, taskID: task?.id, input: input, batcher: batcher, held: &held, now: now,
                    effects: &effects)
            }
            return .granted(held)
        }
        let raised = group.line.enqueue(
            ticket: ticket, weight: weight, order: order,
            entry: GroupState.LineEntry(taskID: task?.id, batcher: batcher, input: input))
        if let batcher { group.batchMembers[batcher.id, default: []].append(ticket) }
        waitingInAll += 1
        if group.fairShare != nil {
            // A newcomer may stand ahead of calls already waiting, and each raised call passes others: each
            // moves a place by one at most. A raised call's own place dropped further: its readers read now.
            moved(group, count: 1 + raised.count, effects: &effects)
            for raisedTicket in raised {
                if let taskID = group.line.entry(ticket: raisedTicket)?.taskID { wake(taskID, effects: &effects) }
            }
        } else if settings.positionUpdateFraction == 0 {
            // The queue size grew: with no fraction set, waiting readers hear of every change of it.
            moved(group, effects: &effects)
        }
        if let source = group.cluster {
            needsClusterTicket(ticket, in: groupID, source: source, effects: &effects)
        }
        return .queued(ticket: ticket)
    }

    /// The call's weight, whether it would wait, and whether its group is scheduled; throws when the call is
    /// not admitted.
    private func admissionDecision(
        group: GroupState, weight requestedWeight: Int?, order: LineOrder, taskID: TaskID?, batchSize: Int,
        now: ContinuousClock.Instant
    ) throws -> (weight: Int, wouldWait: Bool, isScheduled: Bool) {
        let groupID = group.id
        let weight = try Self.validated(weight: requestedWeight, in: group, taskID: taskID)
        // A line whose waiting calls are all held by their keys' running caps has no head: a call of another
        // key may pass them.
        let wouldWait =
            group.line.head != nil || group.line.isCapped(order) || !group.fits(weight: weight) || !processPermitFree
        if group.isScheduled, wouldWait, let refusal = group.line.refusal(of: order) {
            let retryAfter = estimatedWait(in: group, position: (refusal.nextPlace ?? 0) / batchSize, now: now)
            let key = order.key.map { "key '\($0)'" } ?? "calls without a key"
            throw CallQueueError(
                .tooManyQueued,
                "group '\(groupID)': \(key) already has \(refusal.waiting) calls waiting, at most "
                    + "\(refusal.maxWaiting); its next call starts in about \(PerfStats.timeText(retryAfter)), "
                    + "retry then",
                group: groupID, taskID: taskID, queueSize: refusal.waiting, maxQueueSize: refusal.maxWaiting,
                fairnessKey: order.key, retryAfter: retryAfter)
        }
        if group.isScheduled {
            do {
                try Admission.check(
                    Admission.Counts(
                        group: group.id,
                        limit: group.limit,
                        waitingInGroup: group.line.count,
                        groupMaxQueueSize: group.maxQueueSize,
                        waitingInAll: waitingInAll,
                        overallMaxQueueSize: scheduling?.maxQueueSize,
                        wouldWait: wouldWait,
                        // Counted as the status counts it: a batcher's member waits for the batches ahead of its own.
                        estimatedWait: wouldWait
                            ? estimatedWait(in: group, position: group.line.placeIfAdded(order) / batchSize, now: now)
                            : .zero,
                        maxEstimatedWait: scheduling?.maxEstimatedWait
                    ),
                    taskID: taskID)
            } catch var error as CallQueueError {
                // Refused for everyone (full, or too long a wait): retry when the group's next call should start.
                // Worked out only for a refusal, not for every call that waits.
                error.retryAfter = estimatedWait(in: group, position: 0, now: now)
                throw error
            }
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
}
