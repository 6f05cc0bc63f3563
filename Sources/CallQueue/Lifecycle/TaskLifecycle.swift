/// Tracks tasks from queued to running to finished: positions and ETAs while they wait, slot and progress
/// while they run, outcome and times when done; update streams, cancel and control flags by id; bounded
/// histories of finished tasks and results. AUTOMATIC1111's progress module as a Swift type.
///
/// A ``CallQueue`` owns one (``CallQueue/lifecycle``) and records its calls in it. A lifecycle can also be
/// used by itself, to track work that runs elsewhere (a process behind an HTTP call, a job on another
/// machine): ``register(_:group:onCancel:)``, ``start(_:slot:)``, ``report(_:fraction:step:)`` and
/// ``finish(_:outcome:result:)`` record what happens, and every reader sees it.
///
/// ```swift
/// let lifecycle = try TaskLifecycle()
/// let id = try lifecycle.register(group: "render-farm") { farm.cancel(jobID) }
/// // ... the farm picks the job up:
/// try lifecycle.start(id, slot: machineNumber)
/// lifecycle.report(id, fraction: 0.5, step: "frame 12 of 24")
/// try lifecycle.finish(id, outcome: .succeeded)
/// ```
///
/// Hand-tracked tasks of one group form a line in the order they were registered; a task leaves it when it
/// starts or finishes. Their ETA assumes one runs at a time.
///
/// A queue's own lifecycle (``CallQueue/lifecycle``) refuses ``register(_:group:onCancel:)``,
/// ``start(_:slot:)`` and ``finish(_:outcome:result:)`` with ``CallQueueError/Code/invalidArgument``: its
/// calls record themselves, and a start or finish from outside would take a call out of its line without
/// answering its caller, or give its slot away while its body runs.
public final class TaskLifecycle: Sendable {
    /// How a lifecycle behaves.
    public struct Configuration: Sendable {
        /// How many finished tasks stay queryable by id (AUTOMATIC1111 keeps 16).
        public var finishedTaskHistory = 16
        /// How many results of succeeded tasks stay queryable by id (AUTOMATIC1111 keeps 2).
        public var resultHistory = 2
        /// How long a finished task stays queryable by id (its status, result and last latest value), however
        /// few have finished since: a slow or reloading client finds its job by time, not only by count. `nil`
        /// (the default): until ``finishedTaskHistory`` and ``resultHistory`` push it out.
        public var finishedTaskMaxAge: Duration?
        /// The most bytes the result history holds, counted by results that are ``PartialOutput``s (an image's
        /// `[UInt8]`, a `String`; other results count 0); the oldest go first. `nil` (the default): no budget.
        public var resultHistoryBytes: Int?
        /// The run time assumed for a group before any of its tasks has finished.
        public var initialRunTimeEstimate: Duration = .seconds(10)
        /// The least time between two position updates to one subscriber (Gradio's `status_update_rate`).
        /// State changes (start, progress, finish) are delivered at once. `.zero`: every change at once.
        public var positionUpdateInterval: Duration = .milliseconds(250)
        /// How far a waiting task must move before its subscribers hear of it, as a fraction of the place
        /// they were last told, and always at least one place. With 0.1, someone told "500th" hears again at
        /// 450th, then 405th, and every place in the first ten. Subscribers that are not due are not woken at
        /// all, so thousands of waiting streams cost little more than the few that move. 0 (the default): every
        /// change of place or queue size, at most one per ``positionUpdateInterval``. In 0..<1.
        public var positionUpdateFraction: Double = 0
        /// How much of each task's partial outputs is kept for its readers (``PartialOutput``).
        public var partialOutputs = PartialOutputLimits()
        /// The clock every instant and push pause comes from; tests inject a manual one.
        public var clock: LifecycleClock = .continuous
        /// Receives every task's queued, running and finished status.
        public var observer: (any CallQueueObserver)?

        /// A configuration; every parameter has the default described on its property.
        public init(
            finishedTaskHistory: Int = 16,
            resultHistory: Int = 2,
            finishedTaskMaxAge: Duration? = nil,
            resultHistoryBytes: Int? = nil,
            initialRunTimeEstimate: Duration = .seconds(10),
            positionUpdateInterval: Duration = .milliseconds(250),
            positionUpdateFraction: Double = 0,
            partialOutputs: PartialOutputLimits = PartialOutputLimits(),
            clock: LifecycleClock = .continuous,
            observer: (any CallQueueObserver)? = nil
        ) {
            self.finishedTaskHistory = finishedTaskHistory
            self.resultHistory = resultHistory
            self.finishedTaskMaxAge = finishedTaskMaxAge
            self.resultHistoryBytes = resultHistoryBytes
            self.initialRunTimeEstimate = initialRunTimeEstimate
            self.positionUpdateInterval = positionUpdateInterval
            self.positionUpdateFraction = positionUpdateFraction
            self.partialOutputs = partialOutputs
            self.clock = clock
            self.observer = observer
        }

        func validated() throws -> Configuration {
            if finishedTaskHistory < 0 || resultHistory < 0 || (resultHistoryBytes ?? 0) < 0 {
                throw CallQueueError(.invalidArgument, "history sizes must not be negative")
            }
            if let age = finishedTaskMaxAge, age < .zero {
                throw CallQueueError(
                    .invalidArgument, "finishedTaskMaxAge must not be negative (nil keeps finished tasks by count)")
            }
            if initialRunTimeEstimate < .zero || initialRunTimeEstimate > .etaLimit {
                throw CallQueueError(
                    .invalidArgument, "initialRunTimeEstimate must be between 0 and \(Duration.etaLimit)")
            }
            if positionUpdateInterval < .zero {
                throw CallQueueError(.invalidArgument, "positionUpdateInterval must not be negative")
            }
            if !(0..<1).contains(positionUpdateFraction) {
                throw CallQueueError(
                    .invalidArgument,
                    "positionUpdateFraction is a fraction of the place last reported, in 0..<1 (0.1: a move of "
                        + "a tenth), not \(positionUpdateFraction)")
            }
            _ = try partialOutputs.validated()
            return self
        }

        var settings: LifecycleState.Settings {
            LifecycleState.Settings(
                finishedTaskHistory: finishedTaskHistory,
                resultHistory: resultHistory,
                finishedTaskMaxAge: finishedTaskMaxAge,
                resultHistoryBytes: resultHistoryBytes,
                initialRunTimeEstimate: initialRunTimeEstimate,
                positionUpdateInterval: positionUpdateInterval,
                positionUpdateFraction: positionUpdateFraction,
                observes: observer != nil,
                clock: clock,
                partialOutputs: partialOutputs
            )
        }
    }

    /// The owner of the state every reader and call goes through.
    let scheduler: Scheduler
    /// A ``CallQueue``'s lifecycle: the queue records its calls, and nobody else may.
    let isOwnedByQueue: Bool

    /// The clock every instant comes from.
    var clock: LifecycleClock { scheduler.clock }

    /// A lifecycle for tasks you track yourself.
    ///
    /// - Throws: ``CallQueueError`` with ``CallQueueError/Code/invalidArgument`` for a negative history
    ///   size, push interval or run-time estimate.
    public convenience init(configuration: Configuration = Configuration()) throws {
        let configuration = try configuration.validated()
        self.init(configuration: configuration, scheduling: nil)
    }

    init(configuration: Configuration, scheduling: LifecycleState.Scheduling?) {
        scheduler = Scheduler(
            state: LifecycleState(settings: configuration.settings, scheduling: scheduling),
            clock: configuration.clock, observer: configuration.observer,
            interval: configuration.positionUpdateInterval)
        isOwnedByQueue = scheduling != nil
    }

    // MARK: Reading

    /// The status of a live task, or of a finished one still in the history.
    ///
    /// - Throws: ``CallQueueError`` with ``CallQueueError/Code/unknownTask`` for an id never seen, or
    ///   finished and forgotten.
    public func status(of id: TaskID) throws -> TaskStatus {
        guard let status = scheduler.status(of: id) else { throw Self.unknown(id) }
        return status
    }

    /// The statuses of all live tasks, queued and running.
    public var liveTasks: [TaskStatus] { scheduler.liveStatuses }

    /// The task's statuses as they change, ending after the finished one; see ``TaskUpdates``.
    ///
    /// For a finished task still in the history, the sequence holds its final status.
    ///
    /// - Throws: ``CallQueueError`` with ``CallQueueError/Code/unknownTask`` for an unknown id.
    public func updates(of id: TaskID) throws -> TaskUpdates {
        let subscription = UpdateSubscription(taskID: id)
        try scheduler.subscribe(subscription)
        return TaskUpdates(token: SubscriptionToken(subscription: subscription, scheduler: scheduler))
    }

    /// The task's partial outputs with its statuses, until it finishes; see ``TaskOutputs``.
    ///
    /// - Parameters:
    ///   - id: The task.
    ///   - latest: The type of the latest values the task emits (``CallContext/emitLatest(_:)``); leave it
    ///     out when it emits none.
    ///   - chunks: The type of the chunks it emits (``CallContext/emitChunk(_:)``); leave it out when it
    ///     emits none.
    ///   - lastChunk: The index of the last chunk the client already has (a server-sent event's
    ///     `Last-Event-ID`): the reader starts after it. `nil`: from the oldest chunk still kept. An index past
    ///     the newest chunk reads as the newest.
    /// - Throws: ``CallQueueError`` with ``CallQueueError/Code/unknownTask`` for an unknown id.
    public func outputs<Latest: Sendable, Chunk: Sendable>(
        of id: TaskID, latest: Latest.Type = Never.self, chunks: Chunk.Type = Never.self, after lastChunk: Int? = nil
    ) throws -> TaskOutputs<Latest, Chunk> {
        let subscription = UpdateSubscription(taskID: id)
        let (next, overflow) = (lastChunk ?? -1).addingReportingOverflow(1)
        try scheduler.subscribeToOutputs(subscription, from: overflow ? Int.max : next)
        return TaskOutputs(token: SubscriptionToken(subscription: subscription, scheduler: scheduler))
    }

    /// The newest latest value a live task emitted, or the last one of a finished task still in the history;
    /// `nil` when it emitted none, or none of type `Value`. For a route that polls a preview.
    public func latestOutput<Value: Sendable>(of id: TaskID, as type: Value.Type = Value.self) -> Value? {
        scheduler.latestOutput(of: id) as? Value
    }

    /// Adds a chunk to a running task's outputs, for a task tracked by hand (a call's body uses
    /// ``CallContext/emitChunk(_:)``). See ``CallContext/emitChunk(_:)``.
    ///
    /// - Returns: Whether the chunk is kept for readers: `false` when the task is not running, or the chunk
    ///   alone is larger than ``PartialOutputLimits/maxBufferedBytes``.
    @discardableResult
    public func emitChunk(_ chunk: some PartialOutput, for id: TaskID) -> Bool {
        scheduler.emitChunk(chunk, of: id)
    }

    /// Replaces a running task's latest value, for a task tracked by hand. See ``CallContext/emitLatest(_:)``.
    ///
    /// - Returns: Whether it is kept: `false` when the task is not running, or the value is larger than
    ///   ``PartialOutputLimits/maxBufferedBytes``.
    @discardableResult
    public func emitLatest(_ value: some PartialOutput, for id: TaskID) -> Bool {
        scheduler.emitLatest(value, of: id)
    }

    /// The result a succeeded task returned, while it is among the last
    /// ``Configuration/resultHistory``.
    public func result(of id: TaskID) -> (any Sendable)? {
        scheduler.result(of: id)
    }

    // MARK: Control

    /// Cancels a task by id, from anywhere (a Cancel button's request). A queued task leaves its line at once
    /// and its call throws `CancellationError`; a running task's body is cancelled (it sees
    /// `Task.isCancelled`) and keeps its slot until it returns. The task that awaits the call is not
    /// cancelled: it gets `CancellationError` from that call alone, and its later calls run.
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
        try scheduler.request(flags, for: id)
    }

    /// The flags set on a live task; `nil` when it is not live.
    public func flags(of id: TaskID) -> ControlFlags? {
        scheduler.control(of: id)?.flags
    }

    // MARK: Recording tasks tracked by hand

    /// Registers a task as queued at the back of its group's line.
    ///
    /// - Parameters:
    ///   - id: The task's id; a new one is generated when `nil`.
    ///   - group: The line it waits in.
    ///   - onCancel: Called (outside any lock) when the task is cancelled by id.
    /// - Returns: The task's id.
    /// - Throws: ``CallQueueError`` with ``CallQueueError/Code/duplicateTask`` for a live id, and with
    ///   ``CallQueueError/Code/invalidArgument`` on a ``CallQueue``'s lifecycle, whose calls register
    ///   themselves.
    @discardableResult
    public func register(
        _ id: TaskID? = nil,
        group: ConcurrencyGroupID = .default,
        onCancel: (@Sendable () -> Void)? = nil
    ) throws -> TaskID {
        let id = id ?? TaskID.generate()
        let control = TaskControl()
        if let onCancel { _ = control.setCanceller(onCancel) }
        try scheduler.register(id, group: group, control: control)
        return id
    }

    /// Records that a registered task started, in `slot`.
    ///
    /// - Throws: ``CallQueueError`` with ``CallQueueError/Code/unknownTask`` when it is not live, or
    ///   ``CallQueueError/Code/invalidArgument`` when it already started, or on a ``CallQueue``'s lifecycle.
    public func start(_ id: TaskID, slot: Int = 0) throws {
        try refuseOnQueue("start", id)
        try scheduler.startTracked(id, slot: slot)
    }

    /// Records a running task's progress: a fraction `0...1` (clamped; NaN reads as 0) and a short text.
    /// Readers see the newest; a task that is not running ignores it.
    public func report(_ id: TaskID, fraction: Double, step: String? = nil) {
        let clamped = fraction.isNaN ? 0 : min(max(fraction, 0), 1)
        scheduler.report(id, fraction: clamped, step: step)
    }

    /// Records that a task finished and moves it to the history, with its result when it succeeded.
    ///
    /// - Returns: Its final status, or `nil` when it was not live.
    /// - Throws: ``CallQueueError`` with ``CallQueueError/Code/invalidArgument`` on a ``CallQueue``'s
    ///   lifecycle, whose calls finish themselves (cancel one with ``cancel(_:)``).
    @discardableResult
    public func finish(
        _ id: TaskID, outcome: TaskStatus.Outcome, result: (any Sendable)? = nil
    ) throws -> TaskStatus? {
        try refuseOnQueue("finish", id)
        return scheduler.finish(id, outcome: outcome, result: outcome == .succeeded ? result : nil, bodyRan: true)
    }

    private func refuseOnQueue(_ verb: String, _ id: TaskID) throws {
        guard isOwnedByQueue else { return }
        throw CallQueueError(
            .invalidArgument,
            "this lifecycle belongs to a CallQueue, whose calls \(verb) themselves; cancel a call with "
                + "queue.cancel(_:), or track work of your own in a TaskLifecycle of its own",
            taskID: id)
    }

    /// Finishes a job's task: `bodyRan` is false for a job granted its slot whose caller was gone first.
    func finishJob(
        _ id: TaskID, outcome: TaskStatus.Outcome, result: (any Sendable)?, bodyRan: Bool
    ) -> TaskStatus.Finished? {
        scheduler.finish(id, outcome: outcome, result: result, bodyRan: bodyRan)?.state.finished
    }

    // MARK: Internals

    static func unknown(_ id: TaskID) -> CallQueueError {
        CallQueueError(
            .unknownTask, "no live or remembered task has the id '\(id)' (never seen, or finished and forgotten)",
            taskID: id)
    }
}
