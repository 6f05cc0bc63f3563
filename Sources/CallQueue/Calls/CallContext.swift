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

    let queue: CallQueue
    let control: TaskControl

    /// The context of the call running in this task, if any.
    @TaskLocal public static var current: CallContext?

    /// Reports progress as steps done out of a total. Updates are coalesced: subscribers see the latest.
    public func report(completed: Int, of total: Int, step: String? = nil) {
        let fraction = total > 0 ? Double(min(max(completed, 0), total)) / Double(total) : 0
        report(fraction: fraction, step: step ?? "\(completed)/\(total)")
    }

    /// Reports progress as a fraction `0...1` (clamped) with an optional short text.
    public func report(fraction: Double, step: String? = nil) {
        let clamped = fraction.isNaN ? 0 : min(max(fraction, 0), 1)
        queue.reportProgress(of: taskID, fraction: clamped, step: step)
    }

    /// Requests made of this task by id: skip the current item, stop after it, or interrupt.
    public var flags: ControlFlags { control.flags }
}
