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
/// ```
///
/// - Limits are declared once, on the group (``Configuration/groups``); groups nobody declared take
///   ``Configuration/defaultLimit``. Several call sites share a group by naming it.
/// - A call that finds its queue full is rejected at once with ``CallQueueError/Code/queueFull`` and
///   leaves nothing behind.
/// - Cancelling a call, by its own task or by id with ``cancel(_:)``, keeps the limit true: a running
///   call holds its slot until its body has returned.
public final class CallQueue: Sendable {
    /// The configuration the queue was built with.
    public let configuration: Configuration

    let registry: LockedState<Registry>
    /// The process-wide limit, when configured.
    let processLimit: FIFOSemaphore?

    /// Builds a queue.
    ///
    /// - Throws: ``CallQueueError`` with ``CallQueueError/Code/invalidArgument`` for a limit below 1, a
    ///   negative queue size or history size, or a budget below 1.
    public init(configuration: Configuration = Configuration()) throws {
        self.configuration = try configuration.validated()
        registry = LockedState(Registry(configuration: configuration))
        processLimit = configuration.processWideLimit.map { FIFOSemaphore(permits: $0) }
    }

    // MARK: Asking about tasks

    /// The status of a live task, or of a finished one still in the history.
    ///
    /// - Throws: ``CallQueueError`` with ``CallQueueError/Code/unknownTask`` for an id the queue does not
    ///   know (never seen, or finished and forgotten).
    public func status(of id: TaskID) throws -> TaskStatus {
        let now = ContinuousClock.now
        return try registry.withLock { registry in
            if let status = registry.status(of: id, now: now, processLimit: processLimit) { return status }
            throw Self.unknown(id)
        }
    }

    /// The statuses of all live tasks, queued and running.
    public var liveTasks: [TaskStatus] {
        let now = ContinuousClock.now
        return registry.withLock { registry in
            registry.live.keys.compactMap { registry.status(of: $0, now: now, processLimit: processLimit) }
        }
    }

    /// A stream of a task's statuses: the current one at once, then every change (position, start,
    /// progress) until it finishes; the stream ends after the finished status.
    ///
    /// Updates are coalesced, latest wins: a slow subscriber never holds the queue back and never sees a
    /// stale status after a newer one. The stream's buffer is freed when the task ends or the subscriber
    /// stops iterating. For a finished task still in the history, the stream holds its final status.
    ///
    /// - Throws: ``CallQueueError`` with ``CallQueueError/Code/unknownTask`` for an unknown id.
    public func updates(of id: TaskID) throws -> AsyncStream<TaskStatus> {
        let (stream, continuation) = AsyncStream.makeStream(of: TaskStatus.self, bufferingPolicy: .bufferingNewest(1))
        let now = ContinuousClock.now
        let subscription = try registry.withLock { registry -> (status: TaskStatus, key: Int?) in
            guard let status = registry.status(of: id, now: now, processLimit: processLimit) else {
                throw Self.unknown(id)
            }
            guard registry.live[id] != nil else { return (status, nil) }
            return (status, registry.subscribe(id, continuation))
        }
        continuation.yield(subscription.status)
        if let key = subscription.key {
            continuation.onTermination = { [weak self] _ in
                self?.registry.withLock { $0.unsubscribe(id, key: key) }
            }
        } else {
            continuation.finish()
        }
        return stream
    }

    /// The result a succeeded task returned, while it is among the last ``Configuration/resultHistory``.
    public func result(of id: TaskID) -> (any Sendable)? {
        registry.withLock { $0.results[id] }
    }

    // MARK: Control

    /// Cancels a task by id, from anywhere (a Cancel button's request). A queued task leaves its queue at
    /// once and its call throws `CancellationError`; a running task's Swift task is cancelled, and it keeps
    /// its slot until its body returns.
    ///
    /// The task's cancellation handlers run before this returns; a handler must not cancel the same task
    /// by id again.
    ///
    /// - Returns: `true` if a live task was cancelled, `false` if it had already finished.
    /// - Throws: ``CallQueueError`` with ``CallQueueError/Code/unknownTask`` for an unknown id.
    @discardableResult
    public func cancel(_ id: TaskID) throws -> Bool {
        try request(.interrupt, for: id)
    }

    /// Sets flags on a live task for its body to read through ``CallContext/flags`` (AUTOMATIC1111's skip
    /// and stop-after-current). ``ControlFlags/interrupt`` also cancels it, as ``cancel(_:)`` does.
    ///
    /// - Returns: `true` if the task was live, `false` if it had already finished.
    /// - Throws: ``CallQueueError`` with ``CallQueueError/Code/unknownTask`` for an unknown id.
    @discardableResult
    public func request(_ flags: ControlFlags, for id: TaskID) throws -> Bool {
        let control = try registry.withLock { registry -> TaskControl? in
            if let task = registry.live[id] { return task.control }
            if registry.finished[id] != nil { return nil }
            throw Self.unknown(id)
        }
        guard let control else { return false }
        if flags.contains(.interrupt) {
            control.cancel()
        }
        control.insert(flags)
        return true
    }

    /// Shuts the queue: every waiting call fails with ``CallQueueError/Code/closed``, and so does every
    /// later call. Running calls finish normally.
    public func close() {
        let groups = registry.withLock { registry -> [ConcurrencyGroup] in
            registry.isClosed = true
            return registry.groups.values.map(\.group)
        }
        for group in groups {
            group.slots?.close()
            group.budget?.close()
        }
        processLimit?.close()
    }

    // MARK: Internals shared by the run calls

    static func unknown(_ id: TaskID) -> CallQueueError {
        CallQueueError(.unknownTask, "no live or remembered task has the id '\(id)'", taskID: id)
    }

    func reportProgress(of id: TaskID, fraction: Double, step: String?) {
        let now = ContinuousClock.now
        let deliveries = registry.withLock { registry in
            registry.setProgress(of: id, fraction: fraction, step: step)
            return registry.deliveries(for: [id], now: now, processLimit: processLimit)
        }
        deliver(deliveries, observe: false)
    }

    func deliver(_ deliveries: Registry.Deliveries, observe: Bool = true) {
        for (continuation, status) in deliveries.updates {
            continuation.yield(status)
        }
        for continuation in deliveries.finished {
            continuation.finish()
        }
        if observe, let observer = configuration.observer {
            for status in deliveries.observed {
                observer.taskDidChange(status)
            }
        }
    }
}
