extension CallQueue {
    /// What a job's run produced: the body's result or error, with the task and what it cost.
    struct JobOutcome<Output> {
        var result: Result<Output, any Error>
        var taskID: TaskID?
        var stats: PerfStats
    }

    // MARK: The scoped calls

    /// Runs `body` holding a slot of `group`, with no task lifecycle: AUTOMATIC1111's `wrap_queued_call`.
    ///
    /// - Parameters:
    ///   - group: The concurrency group; its limit decides how many such calls run at once.
    ///   - weight: How much of the group's budget the call takes, if the group has one.
    ///   - deadline: When to give up waiting (``CallQueueError/Code/timedOut``); `nil` waits as long as needed.
    ///   - isolation: The actor `body` runs on; the caller's by default.
    ///   - body: The work. Its error is rethrown.
    /// - Throws: `CancellationError` if cancelled while waiting, ``CallQueueError`` (closed, timed out, bad
    ///   weight), or what `body` throws.
    public func runQueued<T>(
        group: ConcurrencyGroupID = .default,
        weight: Int? = nil,
        deadline: ContinuousClock.Instant? = nil,
        isolation: isolated (any Actor)? = #isolation,
        _ body: () async throws -> T
    ) async throws -> T {
        let group = try registry.withLock { registry -> ConcurrencyGroup in
            if registry.isClosed { throw CallQueueError(.closed, "the call queue is closed", group: group) }
            return registry.group(group)
        }
        let held = try await acquireStages(of: group, weight: weight, deadline: deadline, task: nil)
        defer { releaseStages(held, of: group) }
        return try await body()
    }

    /// Runs `body` as a job: queued in `group`, tracked from queued to finished, with its progress, slot and
    /// cost. AUTOMATIC1111's `wrap_gradio_gpu_call` without the response wrapping.
    ///
    /// The task is registered as queued before it waits, so ``status(of:)`` and ``updates(of:)`` see it
    /// at once. Cancelling it (its own task, or ``cancel(_:)``) while it waits throws `CancellationError`
    /// at once; while it runs, `body` sees the cancellation and its slot stays held until it returns.
    ///
    /// - Parameters:
    ///   - id: The task's id; a new one is generated when `nil`.
    ///   - group: The concurrency group.
    ///   - weight: How much of the group's budget the call takes, if the group has one.
    ///   - deadline: When to give up waiting; `nil` waits as long as needed.
    ///   - isolation: The actor `body` runs on; the caller's by default.
    ///   - body: The work, given its ``CallContext`` (slot, progress reporting, flags).
    /// - Returns: What `body` returns.
    /// - Throws: ``CallQueueError`` when the call is not admitted (``CallQueueError/Code/queueFull``,
    ///   ``CallQueueError/Code/waitTooLong``, ``CallQueueError/Code/duplicateTask``, closed, bad weight);
    ///   otherwise, after recording it, what waiting or `body` threw.
    ///
    /// A `Sendable` result is also kept, for the last ``Configuration/resultHistory`` tasks, where
    /// ``result(of:)`` finds it.
    public func runGPUCall<T: Sendable>(
        id: TaskID? = nil,
        group: ConcurrencyGroupID = .default,
        weight: Int? = nil,
        deadline: ContinuousClock.Instant? = nil,
        isolation: isolated (any Actor)? = #isolation,
        _ body: (CallContext) async throws -> T
    ) async throws -> T {
        try await performJob(
            id: id,
            group: group,
            weight: weight,
            deadline: deadline,
            keepResult: { $0 },
            body
        ).result.get()
    }

    /// Runs `body` as a job, like the `Sendable` variant, for a result that cannot be kept in the history.
    public func runGPUCall<T>(
        id: TaskID? = nil,
        group: ConcurrencyGroupID = .default,
        weight: Int? = nil,
        deadline: ContinuousClock.Instant? = nil,
        isolation: isolated (any Actor)? = #isolation,
        _ body: (CallContext) async throws -> T
    ) async throws -> T {
        try await performJob(id: id, group: group, weight: weight, deadline: deadline, keepResult: nil, body)
            .result.get()
    }

    /// Runs `body` unqueued, reports its failure to the observer, and afterwards clears the control flags
    /// of task `id` if it names a live one: AUTOMATIC1111's `wrap_gradio_call` (the job-state reset).
    public func runCall<T>(
        id: TaskID? = nil,
        isolation: isolated (any Actor)? = #isolation,
        _ body: () async throws -> T
    ) async throws -> T {
        try await performCall(id: id, resetFlags: true, arguments: [], body).result.get()
    }

    /// Runs `body` unqueued and reports its failure to the observer, touching no task:
    /// AUTOMATIC1111's `wrap_gradio_call_no_job`, for actions that are not jobs (saving, settings).
    public func runCallNoJob<T>(
        isolation: isolated (any Actor)? = #isolation,
        _ body: () async throws -> T
    ) async throws -> T {
        try await performCall(id: nil, resetFlags: false, arguments: [], body).result.get()
    }

    // MARK: Shared paths

    func performJob<T>(
        id requestedID: TaskID?,
        group groupID: ConcurrencyGroupID,
        weight: Int?,
        deadline: ContinuousClock.Instant?,
        arguments: @autoclosure () -> [Any] = [],
        keepResult: ((T) -> any Sendable)?,
        isolation: isolated (any Actor)? = #isolation,
        _ body: (CallContext) async throws -> T
    ) async throws -> JobOutcome<T> {
        let id = requestedID ?? TaskID.generate()
        let control = TaskControl()
        let queuedAt = ContinuousClock.now
        let (group, admitted) = try registry.withLock { registry in
            let group = try registry.admit(id, group: groupID, weight: weight, control: control, now: queuedAt)
            return (group, registry.deliveriesWithObserver(for: id, now: queuedAt, processLimit: processLimit))
        }
        deliver(admitted)

        control.attach()
        defer { control.detach() }
        var startedAt: ContinuousClock.Instant?
        var memory: Result<MemoryStats, MemorySampler.MemoryUnavailable>?
        let result: Result<T, any Error>
        do {
            let held = try await acquireStages(of: group, weight: weight, deadline: deadline, task: id)
            defer { releaseStages(held, of: group) }
            // Free permits are granted even to a cancelled task, as a lock would; a job does not start
            // heavy work for a caller that is gone.
            try Task.checkCancellation()
            let now = ContinuousClock.now
            startedAt = now
            let started = registry.withLock { registry in
                registry.start(id, slot: held.slot, now: now)
                return registry.deliveriesWithObserver(
                    for: id,
                    positionsOf: groupID,
                    now: now,
                    processLimit: processLimit
                )
            }
            deliver(started)
            // Closed before the slot is released (defers run last first), so the next call's run on the
            // device cannot fall into this window.
            let memoryWindow = configuration.memorySampler?.openWindow()
            defer { memory = memoryWindow?.close() }
            let context = CallContext(taskID: id, group: groupID, slot: held.slot, queue: self, control: control)
            result = .success(try await CallContext.$current.withValue(context) { try await body(context) })
        } catch {
            result = .failure(error)
        }

        let finishedAt = ContinuousClock.now
        let outcome = Self.outcome(of: result)
        let recorded: (any Sendable)? = if case .success(let value) = result { keepResult?(value) } else { nil }
        let finished = registry.withLock { registry -> Registry.Deliveries in
            guard let status = registry.finish(id, outcome: outcome, result: recorded, now: finishedAt) else {
                return Registry.Deliveries()
            }
            var deliveries = registry.deliveriesForFinished(status)
            if startedAt == nil {
                // It left the queue without running: those behind it moved up.
                let moved = registry.deliveries(
                    for: [], positionsOf: groupID, now: finishedAt, processLimit: processLimit)
                deliveries.updates += moved.updates
            }
            return deliveries
        }
        deliver(finished)
        if case .failure(let error) = result, !(error is CancellationError) {
            configuration.observer?.callDidFail(Self.failureReport(error, taskID: id, arguments: arguments()))
        }
        var stats = PerfStats(
            queued: (startedAt ?? finishedAt) - queuedAt,
            running: startedAt.map { finishedAt - $0 } ?? .zero
        )
        switch memory {
        case .success(let memory): stats.memory = memory
        case .failure(let unavailable): stats.memoryUnavailableReason = unavailable.description
        case nil: break
        }
        configuration.observer?.callDidFinish(taskID: id, group: groupID, stats: stats)
        return JobOutcome(result: result, taskID: id, stats: stats)
    }

    func performCall<T>(
        id: TaskID?,
        resetFlags: Bool,
        arguments: @autoclosure () -> [Any],
        isolation: isolated (any Actor)? = #isolation,
        _ body: () async throws -> T
    ) async -> JobOutcome<T> {
        let start = ContinuousClock.now
        let result: Result<T, any Error>
        do {
            result = .success(try await body())
        } catch {
            result = .failure(error)
        }
        let stats = PerfStats(queued: .zero, running: ContinuousClock.now - start)
        if resetFlags, let id {
            registry.withLock { $0.live[id]?.control }?.resetFlags()
        }
        if case .failure(let error) = result, !(error is CancellationError) {
            configuration.observer?.callDidFail(Self.failureReport(error, taskID: id, arguments: arguments()))
        }
        return JobOutcome(result: result, taskID: id, stats: stats)
    }

    static func outcome<T>(of result: Result<T, any Error>) -> TaskStatus.Outcome {
        switch result {
        case .success: return .succeeded
        case .failure(let error as CancellationError): _ = error; return .cancelled
        case .failure(let error): return .failed(message: errorText(error))
        }
    }

    /// `"TypeName: message"`, as AUTOMATIC1111 shows an error.
    static func errorText(_ error: any Error) -> String {
        "\(String(describing: type(of: error))): \(error)"
    }

    static func failureReport(_ error: any Error, taskID: TaskID?, arguments: [Any]) -> CallFailureReport {
        CallFailureReport(
            taskID: taskID,
            errorType: String(describing: type(of: error)),
            message: "\(error)",
            arguments: CallFailureReport.argumentText(arguments)
        )
    }

    // MARK: Acquiring and releasing a group's slot, budget and the process-wide limit

    struct HeldStages {
        var slot: Int
        var slotPermit: Bool
        var budgetWeight: Int?
        var processPermit: Bool
    }

    /// Takes, in order, a slot of the group, the call's weight of the group's budget, and a permit of the
    /// process-wide limit. Whatever it took is given back if a later stage fails.
    func acquireStages(
        of group: ConcurrencyGroup,
        weight: Int?,
        deadline: ContinuousClock.Instant?,
        task id: TaskID?
    ) async throws -> HeldStages {
        var held = HeldStages(slot: -1, slotPermit: false, budgetWeight: nil, processPermit: false)
        do {
            if let slots = group.slots {
                try await wait(on: slots, weight: 1, deadline: deadline, task: id, holder: .group)
                held.slotPermit = true
            }
            if let weight, let budget = group.budget {
                try await wait(on: budget, weight: weight, deadline: deadline, task: id, holder: .group)
                held.budgetWeight = weight
            }
            if let processLimit {
                try await wait(on: processLimit, weight: 1, deadline: deadline, task: id, holder: .processLimit)
                held.processPermit = true
            }
        } catch {
            releaseStages(held, of: group)
            throw error
        }
        held.slot = group.takeSlot()
        return held
    }

    private func wait(
        on semaphore: FIFOSemaphore,
        weight: Int,
        deadline: ContinuousClock.Instant?,
        task id: TaskID?,
        holder: TaskStatus.Holder
    ) async throws {
        let ticket = semaphore.makeTicket()
        if let id {
            registry.withLock { $0.setWaiting(id, on: semaphore, ticket: ticket, holder: holder) }
        }
        try await semaphore.acquire(weight: weight, deadline: deadline, ticket: ticket)
    }

    func releaseStages(_ held: HeldStages, of group: ConcurrencyGroup) {
        if held.slot >= 0 { group.returnSlot(held.slot) }
        if held.processPermit { processLimit?.release() }
        if let weight = held.budgetWeight { group.budget?.release(weight: weight) }
        if held.slotPermit { group.slots?.release() }
    }
}
