/// Where a task stands: queued, running or finished. Every field is a value taken when the status was made.
public struct TaskStatus: Sendable, Hashable, Codable {
    /// The task.
    public var id: TaskID
    /// The concurrency group it runs in.
    public var group: ConcurrencyGroupID
    /// Queued, running or finished, with the details of each.
    public var state: State

    public enum State: Sendable, Hashable, Codable {
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

    public struct Queued: Sendable, Hashable, Codable {
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
    }

    public struct Running: Sendable, Hashable, Codable {
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
    }

    public struct Finished: Sendable, Hashable, Codable {
        /// How it ended.
        public var outcome: Outcome
        /// Time spent waiting for its turn.
        public var queuedFor: Duration
        /// Time spent running, zero if it never started.
        public var ranFor: Duration
        /// Whether it got its slot and started, before it ended.
        public var started: Bool
    }

    public enum Outcome: Sendable, Hashable, Codable {
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
}
