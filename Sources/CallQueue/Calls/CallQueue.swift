/// Runs heavy calls through fair, strictly first-in-first-out queues, one per concurrency group, and keeps
/// every task's lifecycle: queued (position, ETA), running (slot, progress, ETA), finished (outcome, time
/// queued and running apart).
///
/// A server builds one and hands it to its routes; there is no global instance.
///
/// ```swift
/// let queue = try CallQueue(configuration: .init(groups: ["gpu": .init(limit: 2, maxQueueSize: 100)]))
/// let image = try await queue.runGPUCall(group: "gpu") { context in
///     try await model.generate(prompt, device: context.slot) { step in
///         context.report(completed: step, of: 30)
///     }
/// }
/// // Or admit the job, answer its id at once, and let the client follow it:
/// let handle = try queue.submit(group: "gpu") { context in try await model.generate(prompt, device: context.slot) }
/// ```
///
/// - Limits are declared once, on the group (``Configuration/groups``); groups nobody declared take
///   ``Configuration/defaultLimit`` or are rejected (``Configuration/undeclaredGroups``). Several call
///   sites share a group by naming it.
/// - Admission and the place in line are one step: a call that finds its queue full is rejected at once
///   with ``CallQueueError/Code/queueFull`` and leaves nothing behind; an admitted call starts before every
///   call admitted after it.
/// - Cancelling a call, by its own task or by id with ``cancel(_:)``, keeps the limit true: a running
///   call holds its slot until its body has returned. Cancelling by id cancels the call, not its caller.
public final class CallQueue: Sendable {
    /// The configuration the queue was built with.
    public let configuration: Configuration
    /// The tracker of every job's task: status, updates, cancel and flags by id, histories.
    public let lifecycle: TaskLifecycle
    /// Opened by ``close()``: ``run()`` goes on to shut down.
    let shutdownRequested = OneShotSignal()

    /// Builds a queue.
    ///
    /// - Throws: ``CallQueueError`` with ``CallQueueError/Code/invalidArgument`` for a limit, budget or
    ///   process-wide limit outside `1...maximumCount` (``Configuration/maximumCount``), a negative queue size, history
    ///   size, wait or push interval.
    public init(configuration: Configuration = Configuration()) throws {
        self.configuration = try configuration.validated()
        lifecycle = TaskLifecycle(
            configuration: configuration.lifecycleConfiguration, scheduling: configuration.scheduling)
    }

    // MARK: Asking about tasks

    /// The status of a live task, or of a finished one still in the history.
    ///
    /// - Throws: ``CallQueueError`` with ``CallQueueError/Code/unknownTask`` for an id the queue does not
    ///   know (never seen, or finished and forgotten).
    public func status(of id: TaskID) throws -> TaskStatus {
        try lifecycle.status(of: id)
    }

    /// The statuses of all live tasks, queued and running.
    public var liveTasks: [TaskStatus] { lifecycle.liveTasks }

    /// A task's statuses as they change: the current one at once, then start, progress and position
    /// changes (at most one per ``Configuration/positionUpdateInterval``), ending after the finished one.
    /// See ``TaskUpdates``.
    ///
    /// - Throws: ``CallQueueError`` with ``CallQueueError/Code/unknownTask`` for an unknown id.
    public func updates(of id: TaskID) throws -> TaskUpdates {
        try lifecycle.updates(of: id)
    }

    /// A task's partial outputs with its statuses, until it finishes: what its body emits through
    /// ``CallContext/emitChunk(_:)`` and ``CallContext/emitLatest(_:)``. See ``TaskOutputs`` and
    /// ``TaskLifecycle/outputs(of:latest:chunks:after:)``.
    ///
    /// - Throws: ``CallQueueError`` with ``CallQueueError/Code/unknownTask`` for an unknown id.
    public func outputs<Latest: Sendable, Chunk: Sendable>(
        of id: TaskID, latest: Latest.Type = Never.self, chunks: Chunk.Type = Never.self, after lastChunk: Int? = nil
    ) throws -> TaskOutputs<Latest, Chunk> {
        try lifecycle.outputs(of: id, latest: latest, chunks: chunks, after: lastChunk)
    }

    /// The newest latest value a task emitted (``CallContext/emitLatest(_:)``), live or still in the history;
    /// see ``TaskLifecycle/latestOutput(of:as:)``.
    public func latestOutput<Value: Sendable>(of id: TaskID, as type: Value.Type = Value.self) -> Value? {
        lifecycle.latestOutput(of: id, as: type)
    }

    /// The result a succeeded task returned, while it is among the last ``Configuration/resultHistory``.
    public func result(of id: TaskID) -> (any Sendable)? {
        lifecycle.result(of: id)
    }

    // MARK: Control

    /// Cancels a task by id, from anywhere (a Cancel button's request); see ``TaskLifecycle/cancel(_:)``.
    ///
    /// - Returns: `true` if a live task was cancelled, `false` if it had already finished.
    /// - Throws: ``CallQueueError`` with ``CallQueueError/Code/unknownTask`` for an unknown id.
    @discardableResult
    public func cancel(_ id: TaskID) throws -> Bool {
        try lifecycle.cancel(id)
    }

    /// Sets flags on a live task for its body to read through ``CallContext/flags``; see
    /// ``TaskLifecycle/request(_:for:)``.
    @discardableResult
    public func request(_ flags: ControlFlags, for id: TaskID) throws -> Bool {
        try lifecycle.request(flags, for: id)
    }

    /// Stops admitting: every waiting call fails with ``CallQueueError/Code/closed``, and so does every later
    /// call. Running calls finish normally. A ``run()`` in progress goes on to shut the queue down; see
    /// ``shutdown(gracePeriod:)`` to wait for the running calls as well.
    public func close() {
        scheduler.close()
        shutdownRequested.open()
    }

    /// The owner of the queue's state.
    var scheduler: Scheduler { lifecycle.scheduler }
}
