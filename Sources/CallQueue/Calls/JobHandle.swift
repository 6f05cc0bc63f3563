extension CallQueue {
    /// Admits a job and returns at once with its handle; the job waits and runs in a task the queue owns.
    ///
    /// This is how a server answers `POST /jobs` with `202 {"task_id": …}` as soon as the job is in line,
    /// and lets the client follow it with ``updates(of:)`` (`GET /jobs/:id/events`), ask ``status(of:)``,
    /// and ``cancel(_:)`` it, from any request. A full queue is an immediate, typed error (answer 503);
    /// nothing is registered then.
    ///
    /// Cancelling the task that awaits ``JobHandle/value`` does not cancel the job: a client that goes
    /// away can come back by id. Cancel it by id or with ``JobHandle/cancel()``.
    ///
    /// - Parameters:
    ///   - id: The task's id; a new one is generated when `nil`.
    ///   - group: The concurrency group.
    ///   - weight: How much of the group's budget the job takes; only for a group with a budget.
    ///   - fairness: The job's key and priority in a group with fair share; `nil`: ``CallFairness/current``.
    ///   - deadline: When to give up waiting for a slot; `nil` waits as long as needed.
    ///   - body: The work, given its ``CallContext``. Its result is kept for ``result(of:)`` too.
    /// - Returns: The job's handle.
    /// - Throws: ``CallQueueError`` when the job is not admitted (``CallQueueError/Code/queueFull``,
    ///   ``CallQueueError/Code/waitTooLong``, ``CallQueueError/Code/duplicateTask``,
    ///   ``CallQueueError/Code/unknownGroup``, closed, bad weight).
    public func submit<Output: Sendable>(
        id: TaskID? = nil,
        group: ConcurrencyGroupID = .default,
        weight: Int? = nil,
        fairness: CallFairness? = nil,
        deadline: ContinuousClock.Instant? = nil,
        _ body: @escaping @Sendable (CallContext) async throws -> Output
    ) throws -> JobHandle<Output> {
        let job = try admitJob(id: id, group: group, weight: weight, fairness: fairness)
        let task = scheduler.background.spawn {
            await self.runJob(job, deadline: deadline, keepResult: { $0 }, arguments: []) { context in
                try await CallContext.$current.withValue(context) { try await body(context) }
            }
        }
        // The job runs in a task of the queue's own: a cancel by id may cancel it whole.
        if job.control.setCanceller({ task.cancel() }) { task.cancel() }
        return JobHandle(id: job.id, queue: self, task: task)
    }
}

/// A submitted job: its id, its status and updates, its result, and cancel.
///
/// Made by ``CallQueue/submit(id:group:weight:fairness:deadline:_:)``. The job runs whether or not anyone holds the
/// handle; everything here is also reachable by id from the queue.
public struct JobHandle<Output: Sendable>: Sendable {
    /// The job's task id: what a client keeps to follow or cancel it.
    public let id: TaskID
    let queue: CallQueue
    let task: Task<CallQueue.JobOutcome<Output>, Never>

    /// What the job returned, once it has finished.
    ///
    /// - Throws: `CancellationError` if it was cancelled, ``CallQueueError`` if it timed out waiting or the
    ///   queue closed, or what its body threw. Cancelling the awaiting task does not cancel the job.
    public var value: Output {
        get async throws { try await task.value.result.get() }
    }

    /// The job's outcome as AUTOMATIC1111's wrappers return it: outputs or the error, and what it cost.
    public var response: CallResponse<Output> {
        get async { CallResponse(await task.value, fallback: nil) }
    }

    /// The job's current status; see ``CallQueue/status(of:)``.
    public func status() throws -> TaskStatus {
        try queue.status(of: id)
    }

    /// The job's statuses as they change; see ``CallQueue/updates(of:)``.
    public func updates() throws -> TaskUpdates {
        try queue.updates(of: id)
    }

    /// Cancels the job; see ``CallQueue/cancel(_:)``.
    ///
    /// - Returns: `true` if it was live, `false` if it had finished (or was forgotten).
    @discardableResult
    public func cancel() -> Bool {
        (try? queue.cancel(id)) ?? false
    }
}
