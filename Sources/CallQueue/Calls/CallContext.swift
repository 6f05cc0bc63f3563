/// What a running call knows about itself, and how it reports progress.
///
/// Handed to the body of `CallQueue.runGPUCall`, and available to any code
/// the body calls as ``CallContext/current``.
public struct CallContext: Sendable {
    /// The task.
    public let taskID: TaskID
    /// The group it runs in.
    public let group: ConcurrencyGroupID
    /// Which of the group's slots it holds, `0..<limit`: with one slot per GPU, the GPU to use.
    public let slot: Int

    let lifecycle: TaskLifecycle
    let control: TaskControl

    /// The context of the call running in this task, if any.
    @TaskLocal public static var current: CallContext?

    /// Reports progress as steps done out of a total. Updates are coalesced: subscribers see the latest.
    public func report(completed: Int, of total: Int, step: String? = nil) {
        let fraction = total > 0 ? Double(min(max(completed, 0), total)) / Double(total) : 0
        report(fraction: fraction, step: step ?? "\(completed)/\(total)")
    }

    /// Reports progress as a fraction `0...1` (clamped; NaN reads as 0) with an optional short text. The
    /// running ETA is `elapsed / fraction - elapsed`, clamped to about 31 years for tiny fractions.
    public func report(fraction: Double, step: String? = nil) {
        lifecycle.report(taskID, fraction: fraction, step: step)
    }

    /// Emits a chunk of the call's partial output (a token, a log line): every reader of
    /// ``CallQueue/outputs(of:latest:chunks:after:)`` gets every chunk, in order, with its index.
    ///
    /// Costs a lock and an append, whatever the number of readers that are not waiting; the task keeps at
    /// most ``PartialOutputLimits`` of them, dropping the oldest first. An emit after the call finished (from
    /// a task it left behind) is ignored.
    ///
    /// - Returns: Whether the chunk is kept for readers: `false` after the call finished, or for a chunk
    ///   larger than the whole byte budget (dropped at once; readers count it as missed).
    @discardableResult
    public func emitChunk(_ chunk: some PartialOutput) -> Bool {
        lifecycle.emitChunk(chunk, for: taskID)
    }

    /// Emits the call's newest partial result (a preview image, the caption so far): readers get the newest,
    /// coalesced like progress, and the finished task keeps the last one in its history
    /// (``CallQueue/latestOutput(of:as:)``).
    ///
    /// - Returns: Whether it is kept: `false` after the call finished, or for a value larger than
    ///   ``PartialOutputLimits/maxBufferedBytes`` (readers keep the previous one).
    @discardableResult
    public func emitLatest(_ value: some PartialOutput) -> Bool {
        lifecycle.emitLatest(value, for: taskID)
    }

    /// Requests made of this task by id: skip the current item, stop after it, or interrupt. Lock-free:
    /// safe to read from a cancellation handler.
    public var flags: ControlFlags { control.flags }

    /// In a cluster-wide group (``CallQueue/Configuration/permitSources``): the grant, with its slot and
    /// fencing number; `nil` in an in-process group.
    public var permit: ClusterPermit? { lifecycle.scheduler.clusterPermit(of: taskID) }

    /// Whether this call was cancelled by id (``CallQueue/cancel(_:)``).
    public var isCancelRequested: Bool { control.isCancelRequested }
}
