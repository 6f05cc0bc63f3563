extension CallQueue {
    /// What a job's run produced: the body's result or error, with the task and what it cost.
    struct JobOutcome<Output> {
        var result: Result<Output, any Error>
        var taskID: TaskID?
        var stats: PerfStats
    }
}

extension CallQueue.JobOutcome: Sendable where Output: Sendable {}

extension CallQueue {

    // MARK: The scoped calls

    /// Runs `body` holding a slot of `group`, with no task lifecycle: AUTOMATIC1111's `wrap_queued_call`.
    ///
    /// The call is admitted like any other (it counts in queue sizes and estimated waits, and may be
    /// rejected with ``CallQueueError/Code/queueFull``), waits in its group's line, and runs in the
    /// calling task.
    ///
    /// - Parameters:
    ///   - group: The concurrency group; its limit decides how many such calls run at once.
    ///   - weight: How much of the group's budget the call takes; only for a group with a budget.
    ///   - fairness: The call's key and priority in a group with fair share; `nil`: ``CallFairness/current``.
    ///   - deadline: When to give up waiting (``CallQueueError/Code/timedOut``); `nil` waits as long as needed.
    ///   - isolation: The actor `body` runs on; the caller's by default.
    ///   - body: The work. Its error is rethrown.
    /// - Throws: `CancellationError` if cancelled while waiting, ``CallQueueError`` (not admitted, closed,
    ///   timed out, bad weight), or what `body` throws.
    public func runQueued<T>(
        group: ConcurrencyGroupID = .default,
        weight: Int? = nil,
        fairness: CallFairness? = nil,
        deadline: ContinuousClock.Instant? = nil,
        isolation: isolated (any Actor)? = #isolation,
        _ body: () async throws -> T
    ) async throws -> T {
        let admitted = try admit(task: nil, group: group, weight: weight, fairness: fairness)
        let held = try await acquire(admitted, deadline: deadline).held
        defer { release(held) }
        return try await body()
    }

    /// Runs `body` as a job: queued in `group`, tracked from queued to finished, with its progress, slot and
    /// cost. AUTOMATIC1111's `wrap_gradio_gpu_call` without the response wrapping.
    ///
    /// The task is registered as queued, in its place in line, before this suspends, so ``status(of:)``
    /// and ``updates(of:)`` see it at once. Cancelling the calling task, or ``cancel(_:)`` by id, while it
    /// waits throws `CancellationError` at once; while it runs, `body` sees the cancellation (it runs in a
    /// task of its own, so a cancel by id never cancels the caller) and its slot stays held until it
    /// returns.
    ///
    /// - Parameters:
    ///   - id: The task's id; a new one is generated when `nil`.
    ///   - group: The concurrency group.
    ///   - weight: How much of the group's budget the call takes; only for a group with a budget.
    ///   - fairness: The call's key and priority in a group with fair share; `nil`: ``CallFairness/current``.
    ///   - deadline: When to give up waiting; `nil` waits as long as needed.
    ///   - isolation: The actor `body` runs on; the caller's by default.
    ///   - body: The work, given its ``CallContext`` (slot, progress reporting, flags).
    ///   `body` runs in a task of its own while the caller waits for it, on the caller's actor.
    /// - Returns: What `body` returns.
    /// - Throws: ``CallQueueError`` when the call is not admitted (``CallQueueError/Code/queueFull``,
    ///   ``CallQueueError/Code/waitTooLong``, ``CallQueueError/Code/duplicateTask``,
    ///   ``CallQueueError/Code/unknownGroup``, closed, bad weight); otherwise, after recording it, what
    ///   waiting or `body` threw.
    ///
    /// A `Sendable` result is also kept, for the last ``Configuration/resultHistory`` tasks, where
    /// ``result(of:)`` finds it.
    public func runGPUCall<T: Sendable>(
        id: TaskID? = nil,
        group: ConcurrencyGroupID = .default,
        weight: Int? = nil,
        fairness: CallFairness? = nil,
        deadline: ContinuousClock.Instant? = nil,
        isolation: isolated (any Actor)? = #isolation,
        _ body: @escaping (CallContext) async throws -> T
    ) async throws -> T {
        try await performJob(
            id: id, group: group, weight: weight, fairness: fairness, deadline: deadline, keepResult: { $0 }, body
        )
        .result.get()
    }

    /// Runs `body` as a job, like the `Sendable` variant, for a result that cannot be kept in the history.
    public func runGPUCall<T>(
        id: TaskID? = nil,
        group: ConcurrencyGroupID = .default,
        weight: Int? = nil,
        fairness: CallFairness? = nil,
        deadline: ContinuousClock.Instant? = nil,
        isolation: isolated (any Actor)? = #isolation,
        _ body: @escaping (CallContext) async throws -> T
    ) async throws -> T {
        try await performJob(
            id: id, group: group, weight: weight, fairness: fairness, deadline: deadline, keepResult: nil, body
        )
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

    /// A scoped job: admitted here, waiting in the calling task, its body in a task of its own so that a
    /// cancel by id reaches the body and not the caller.
    func performJob<T>(
        id requestedID: TaskID?,
        group: ConcurrencyGroupID,
        weight: Int?,
        fairness: CallFairness?,
        deadline: ContinuousClock.Instant?,
        arguments: @autoclosure () -> [Any] = [],
        keepResult: ((T) -> any Sendable)?,
        isolation: isolated (any Actor)? = #isolation,
        _ body: @escaping (CallContext) async throws -> T
    ) async throws -> JobOutcome<T> {
        let job = try admitJob(id: requestedID, group: group, weight: weight, fairness: fairness)
        let actor = isolation
        let unsafeBody = UnsafeTransfer(body)
        return await runJob(job, deadline: deadline, keepResult: keepResult, arguments: arguments()) { context in
            let bodyTask = Self.startBody { try await Self.invoke(unsafeBody.value, with: context, on: actor) }
            if job.control.setCanceller({ bodyTask.cancel() }) { bodyTask.cancel() }
            defer { job.control.clearCanceller() }
            return try await withTaskCancellationHandler {
                try await bodyTask.value.value
            } onCancel: {
                bodyTask.cancel()
            }
        }
    }

    /// Starts a scoped call's body in a task of its own, so that a cancel by id reaches the body and not its
    /// caller.
    ///
    /// Not `Task.immediate`, although the caller waits for the body anyway: with it, the test suite hung in 4 of
    /// 6 runs on Linux (a scoped call never returned, with no thread busy), once calls ran inside
    /// `TaskLocal.withValue` scopes, which ``CallFairness/current`` invites; with a plain task, 0 of 10.
    private static func startBody<T>(
        _ operation: sending @escaping @isolated(any) () async throws -> UnsafeTransfer<T>
    ) -> Task<UnsafeTransfer<T>, any Error> {
        Task(operation: operation)
    }

    /// Runs `body` on `actor` (the caller's isolation), with the context as ``CallContext/current``.
    private static func invoke<T>(
        _ body: (CallContext) async throws -> T,
        with context: CallContext,
        on actor: isolated (any Actor)?
    ) async throws -> UnsafeTransfer<T> {
        UnsafeTransfer(try await CallContext.$current.withValue(context) { try await body(context) })
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
            scheduler.control(of: id)?.resetFlags()
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

    /// `"TypeName: message"`, as AUTOMATIC1111 shows an error; the type is named once.
    static func errorText(_ error: any Error) -> String {
        "\(String(describing: type(of: error))): \(errorMessage(error))"
    }

    /// An error's message without its type: a ``CallQueueError``'s ``CallQueueError/message``, else its
    /// description.
    static func errorMessage(_ error: any Error) -> String {
        (error as? CallQueueError)?.message ?? "\(error)"
    }

    static func failureReport(_ error: any Error, taskID: TaskID?, arguments: [Any]) -> CallFailureReport {
        CallFailureReport(
            taskID: taskID,
            errorType: String(describing: type(of: error)),
            message: errorMessage(error),
            arguments: CallFailureReport.argumentText(arguments)
        )
    }
}

/// A value handed to a task that the type system cannot see is used by one task at a time: the body of a
/// scoped call, which runs while its caller waits for it, and the body's result on its way back.
struct UnsafeTransfer<Value>: @unchecked Sendable {
    let value: Value

    init(_ value: Value) {
        self.value = value
    }
}
