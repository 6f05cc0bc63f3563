// Partial outputs: a running task's chunks and latest value, and the readers that follow them.

extension LifecycleState {
    /// A running task's buffer, made on first use; `nil` when the task is not running.
    private mutating func runningOutputs(of id: TaskID) -> (LiveTask, OutputBuffer)? {
        guard let task = tasks[id], task.isRunning else { return nil }
        return (task, outputs(of: task))
    }

    private func outputs(of task: LiveTask) -> OutputBuffer {
        if let buffer = task.outputs { return buffer }
        let buffer = OutputBuffer(limits: settings.partialOutputs)
        task.outputs = buffer
        return buffer
    }

    /// Adds a chunk to a running task's window. Returns whether it is kept, and the values dropped, for the
    /// caller to release after the lock.
    mutating func emitChunk(
        _ value: any PartialOutput, bytes: Int, of id: TaskID, effects: inout Effects
    ) -> (kept: Bool, dropped: OutputBuffer.Dropped) {
        guard let (_, buffer) = runningOutputs(of: id) else { return (false, OutputBuffer.Dropped(value)) }
        let outcome = buffer.append(value, bytes: bytes)
        wakeOutputReaders(of: buffer, effects: &effects)
        return outcome
    }

    /// Replaces a running task's latest value. Returns whether it is kept, and the values dropped.
    mutating func emitLatest(
        _ value: any PartialOutput, bytes: Int, of id: TaskID, effects: inout Effects
    ) -> (kept: Bool, dropped: OutputBuffer.Dropped) {
        guard let (_, buffer) = runningOutputs(of: id) else { return (false, OutputBuffer.Dropped(value)) }
        let outcome = buffer.setLatest(value, bytes: bytes)
        if outcome.kept { wakeOutputReaders(of: buffer, effects: &effects) }
        return outcome
    }

    /// Wakes the readers parked on a task's outputs. A reader that is not parked (reading, or never reading)
    /// costs nothing here.
    private func wakeOutputReaders(of buffer: OutputBuffer, effects: inout Effects) {
        guard !buffer.parkedReaders.isEmpty else { return }
        for subscription in buffer.parkedReaders.values {
            if let reader = subscription.parked {
                subscription.parked = nil
                effects.append(.wakeReader(reader))
            }
        }
        buffer.parkedReaders.removeAll(keepingCapacity: true)
    }

    /// Starts a reader of outputs at chunk `nextChunk`, clamped to the chunks emitted so far: on a live task,
    /// in its window; on a finished one, with its final status, its last latest value, and its chunks counted
    /// as missed. Throws for an unknown id.
    mutating func subscribeToOutputs(
        _ subscription: UpdateSubscription, from nextChunk: Int, now: ContinuousClock.Instant
    ) throws {
        let id = subscription.taskID
        let buffer: OutputBuffer
        if let task = tasks[id] {
            buffer = outputs(of: task)
            subscribe(subscription)
        } else if let final = finished[id, now] {
            subscription.final = final
            buffer = OutputBuffer(limits: settings.partialOutputs, finished: finishedOutputs[id, now])
        } else {
            throw TaskLifecycle.unknown(id)
        }
        subscription.outputs = buffer
        subscription.nextChunk = min(max(0, nextChunk), buffer.nextIndex)
    }

    /// What an outputs reader has not read yet, taken in one step; `nil` when nothing is new.
    func takeOutputs(for subscription: UpdateSubscription) -> OutputBuffer.Delta? {
        guard let buffer = subscription.outputs,
            buffer.hasNews(nextChunk: subscription.nextChunk, latestSeen: subscription.latestSeen)
        else { return nil }
        let delta = buffer.delta(from: subscription.nextChunk, latestSeen: subscription.latestSeen)
        subscription.nextChunk = buffer.nextIndex
        subscription.latestSeen = buffer.latestSequence
        return delta
    }

    /// The latest value a live or remembered task emitted.
    func latestOutput(of id: TaskID, now: ContinuousClock.Instant) -> (any PartialOutput)? {
        if let task = tasks[id] { return task.outputs?.latest }
        // Kept no longer than the task's status: a task forgotten by the history has no preview either.
        return finished[id, now] != nil ? finishedOutputs[id, now]?.latest : nil
    }
}
