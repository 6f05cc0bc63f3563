// The job runner as named steps: admit, acquire, start, run, finish, report. Scoped calls run them in the
// caller's task; submitted jobs in a task the queue owns.

extension CallQueue {
    /// A call admitted into its group's line: granted at once, or waiting with a ticket.
    struct Admitted: Sendable {
        var group: ConcurrencyGroupID
        var weight: Int
        var outcome: LifecycleState.Admitted
    }

    /// A job admitted as a task.
    struct AdmittedJob: Sendable {
        var id: TaskID
        var control: TaskControl
        var admitted: Admitted
    }

    // MARK: Admit

    func admit(
        task: (id: TaskID, control: TaskControl)?, group: ConcurrencyGroupID, weight: Int?,
        fairness: CallFairness?, batcher: GroupState.BatcherTag? = nil, input: (any Sendable)? = nil
    ) throws -> Admitted {
        let outcome = try scheduler.admit(
            group: group, weight: weight, fairness: fairness, task: task, batcher: batcher, input: input)
        return Admitted(group: group, weight: weight ?? 0, outcome: outcome)
    }

    func admitJob(
        id: TaskID?, group: ConcurrencyGroupID, weight: Int?, fairness: CallFairness?,
        batcher: GroupState.BatcherTag? = nil, input: (any Sendable)? = nil
    ) throws -> AdmittedJob {
        let id = id ?? TaskID.generate()
        let control = TaskControl()
        return AdmittedJob(
            id: id, control: control,
            admitted: try admit(
                task: (id, control), group: group, weight: weight, fairness: fairness, batcher: batcher, input: input))
    }

    // MARK: Acquire and release

    /// Waits in line until the call is granted its slot, its weight and a process permit.
    ///
    /// - Throws: `CancellationError` when the task is cancelled (or the job cancelled by id) while waiting,
    ///   ``CallQueueError/Code/timedOut`` at the deadline, ``CallQueueError/Code/closed`` on close. When it
    ///   throws, the call holds nothing.
    func acquire(
        _ admitted: Admitted, deadline: ContinuousClock.Instant?
    ) async throws -> (held: LifecycleState.Held, startObserved: Bool, batch: BatchRunBase?) {
        switch admitted.outcome {
        case .granted(let held):
            return (held, false, held.batch)
        case .queued(let ticket):
            let grant = try await scheduler.waitForGrant(ticket: ticket, group: admitted.group, deadline: deadline)
            let held = LifecycleState.Held(
                group: admitted.group, ticket: ticket, slot: grant.slot, weight: admitted.weight)
            return (held, grant.startObserved, grant.batch)
        }
    }

    /// Gives back what an untracked call held; the next in line is granted in the same step.
    func release(_ held: LifecycleState.Held) {
        scheduler.release(held)
    }

    // MARK: Start, run, finish, report

    /// Runs an admitted job to its end and records it: waits for its slot, starts it (unless its caller or
    /// a cancel by id came first), runs `execute` inside the memory window, then finishes the task and
    /// gives the slot to the next call in one step, and reports what it cost.
    func runJob<T>(
        _ job: AdmittedJob,
        deadline: ContinuousClock.Instant?,
        keepResult: ((T) -> any Sendable)?,
        arguments: @autoclosure () -> [Any],
        isolation: isolated (any Actor)? = #isolation,
        execute: (CallContext) async throws -> T
    ) async -> JobOutcome<T> {
        var memory: Result<MemoryStats, MemorySampler.MemoryUnavailable>?
        var bodyRan = false
        let result: Result<T, any Error>
        do {
            let (held, startObserved, batch) = try await acquire(job.admitted, deadline: deadline)
            if let batch { job.control.batch = batch }
            // A lock grants free permits even to a cancelled caller; a job does not start heavy work for a
            // caller that is gone.
            if Task.isCancelled || job.control.isCancelRequested {
                batch?.cancelMember(ticket: held.ticket)
                throw job.control.lost ?? CancellationError()
            }
            if !startObserved { observeStart(of: job.id) }
            let context = CallContext(
                taskID: job.id, group: job.admitted.group, slot: held.slot, lifecycle: lifecycle, control: job.control)
            // Closed before the finish gives the slot away, so the next call's run cannot fall into it.
            let window = memorySampler(group: job.admitted.group, slot: held.slot)?.openWindow()
            defer { memory = window?.close() }
            bodyRan = true
            result = .success(try await execute(context))
        } catch {
            // A call stopped because its cluster lease was lost fails with that error, not as cancelled.
            result = .failure(error is CancellationError ? job.control.lost ?? error : error)
        }
        let recorded: (any Sendable)? = if case .success(let value) = result { keepResult?(value) } else { nil }
        let finished = lifecycle.finishJob(
            job.id, outcome: Self.outcome(of: result), result: recorded, bodyRan: bodyRan)
        if case .failure(let error) = result, !(error is CancellationError) {
            configuration.observer?.callDidFail(Self.failureReport(error, taskID: job.id, arguments: arguments()))
        }
        var stats = PerfStats(queued: finished?.queuedFor ?? .zero, running: finished?.ranFor ?? .zero)
        if let batchStats = job.control.batch?.memberStats {
            // A batch member: the batch's run time, size and memory window.
            stats.running = batchStats.running
            stats.batchSize = batchStats.batchSize
            stats.memory = batchStats.memory
            stats.memoryUnavailableReason = batchStats.memoryUnavailableReason
            memory = nil
        }
        switch memory {
        case .success(let memory): stats.memory = memory
        case .failure(let unavailable): stats.memoryUnavailableReason = unavailable.description
        case nil: break
        }
        configuration.observer?.callDidFinish(taskID: job.id, group: job.admitted.group, stats: stats)
        return JobOutcome(result: result, taskID: job.id, stats: stats)
    }

    /// The observer hears of a start from the thread that granted it, right after the finish that let it in;
    /// a call granted before it had suspended (or at once) reports its own start.
    private func observeStart(of id: TaskID) {
        guard let observer = configuration.observer, let status = try? lifecycle.status(of: id) else { return }
        observer.taskDidChange(status)
    }
}
