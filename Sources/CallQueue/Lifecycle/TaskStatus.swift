/// Where a task stands: queued, running or finished. Every field is a value taken when the status was made.
///
/// Encodes as JSON a browser reads directly: durations in seconds, a flat `state` field with the fields of
/// that state beside it (see ``encode(to:)``).
public struct TaskStatus: Sendable, Hashable {
    /// The task.
    public var id: TaskID
    /// The concurrency group it runs in.
    public var group: ConcurrencyGroupID
    /// Queued, running or finished, with the details of each.
    public var state: State
    /// When the status was made, as a count that only grows: of two statuses of one task, the one with the
    /// larger version is the newer. An update stream never yields a smaller version after a larger one.
    public var version: UInt64
    /// The call's fairness key, only where its group's fair share reports keys (``FairShare/reportsKeys``):
    /// keys can be personal data.
    public var fairnessKey: FairnessKey?

    public init(
        id: TaskID, group: ConcurrencyGroupID, state: State, version: UInt64 = 0, fairnessKey: FairnessKey? = nil
    ) {
        self.id = id
        self.group = group
        self.state = state
        self.version = version
        self.fairnessKey = fairnessKey
    }

    public enum State: Sendable, Hashable {
        case queued(Queued)
        case running(Running)
        case finished(Finished)
    }

    /// What holds a queued task back.
    public enum Holder: String, Sendable, Hashable, Codable {
        /// Its group's limit (or weight budget): calls of the same group are ahead of it or running.
        case group
        /// The queue's process-wide limit, shared by all groups.
        case processLimit
    }

    public struct Queued: Sendable, Hashable {
        /// Waiting tasks ahead of this one in what holds it (0: next).
        public var position: Int
        /// Tasks waiting in that queue, this one included.
        public var queueSize: Int
        /// Whether its group or the process-wide limit holds it.
        public var heldBy: Holder
        /// Expected time until it starts.
        public var estimatedWait: Duration
        /// Expected time until it finishes: the wait plus one run.
        public var eta: Duration

        public init(position: Int, queueSize: Int, heldBy: Holder, estimatedWait: Duration, eta: Duration) {
            self.position = position
            self.queueSize = queueSize
            self.heldBy = heldBy
            self.estimatedWait = estimatedWait
            self.eta = eta
        }
    }

    public struct Running: Sendable, Hashable {
        /// Which of the group's slots it holds, `0..<limit`: with one slot per GPU, the GPU to use.
        public var slot: Int
        /// Fraction done, `0...1`, once the call has reported any progress.
        public var progress: Double?
        /// The call's own words on what it is doing ("step 12 of 30").
        public var step: String?
        /// How long it has run.
        public var elapsed: Duration
        /// Expected time until it finishes: `elapsed / progress - elapsed` once progress is known, else the
        /// group's typical run time minus `elapsed`.
        public var eta: Duration

        public init(slot: Int, progress: Double?, step: String?, elapsed: Duration, eta: Duration) {
            self.slot = slot
            self.progress = progress
            self.step = step
            self.elapsed = elapsed
            self.eta = eta
        }
    }

    public struct Finished: Sendable, Hashable {
        /// How it ended.
        public var outcome: Outcome
        /// Time spent waiting for its turn.
        public var queuedFor: Duration
        /// Time spent running, zero if it never started.
        public var ranFor: Duration
        /// Whether it got its slot and started, before it ended.
        public var started: Bool

        public init(outcome: Outcome, queuedFor: Duration, ranFor: Duration, started: Bool) {
            self.outcome = outcome
            self.queuedFor = queuedFor
            self.ranFor = ranFor
            self.started = started
        }
    }

    public enum Outcome: Sendable, Hashable {
        case succeeded
        case failed(message: String)
        case cancelled
    }

    /// Whether the task has finished.
    public var isFinished: Bool {
        state.finished != nil
    }
}

extension TaskStatus.State {
    /// The details when queued, else `nil`.
    public var queued: TaskStatus.Queued? {
        if case .queued(let queued) = self { return queued }
        return nil
    }

    /// The details when running, else `nil`.
    public var running: TaskStatus.Running? {
        if case .running(let running) = self { return running }
        return nil
    }

    /// The details when finished, else `nil`.
    public var finished: TaskStatus.Finished? {
        if case .finished(let finished) = self { return finished }
        return nil
    }

    /// `"queued"`, `"running"` or `"finished"`: the `state` field of the JSON.
    public var name: String {
        switch self {
        case .queued: return "queued"
        case .running: return "running"
        case .finished: return "finished"
        }
    }
}
