/// What a batch's body knows about its batch, and how it reports progress.
///
/// Handed to the body of a ``Batcher``. Member `i` is the `i`-th input and must get the `i`-th output.
public struct BatchContext: Sendable {
    /// The group the batch runs in.
    public let group: ConcurrencyGroupID
    /// Which of the group's slots the batch holds: with one slot per GPU, the GPU to use.
    public let slot: Int
    /// The members' task ids, in input order.
    public let taskIDs: [TaskID]

    let lifecycle: TaskLifecycle
    let cancelled: @Sendable (Int) -> Bool

    /// The number of members.
    public var count: Int { taskIDs.count }

    /// Whether member `index` was cancelled (by id or by its caller) since the batch started. Its output is
    /// discarded; the body may skip its work. When every member is cancelled, the body's task is cancelled.
    public func isCancelled(_ index: Int) -> Bool {
        cancelled(index)
    }

    /// Reports the batch's progress to every member's task: steps done out of a total.
    public func report(completed: Int, of total: Int, step: String? = nil) {
        let fraction = total > 0 ? Double(min(max(completed, 0), total)) / Double(total) : 0
        report(fraction: fraction, step: step ?? "\(completed)/\(total)")
    }

    /// Emits a chunk of member `index`'s partial output, as ``CallContext/emitChunk(_:)`` does for a call.
    ///
    /// - Returns: Whether it is kept; `false` also for an index outside `0..<count`.
    @discardableResult
    public func emitChunk(_ chunk: some PartialOutput, to index: Int) -> Bool {
        guard taskIDs.indices.contains(index) else { return false }
        return lifecycle.emitChunk(chunk, for: taskIDs[index])
    }

    /// Emits member `index`'s newest partial result, as ``CallContext/emitLatest(_:)`` does for a call.
    ///
    /// - Returns: Whether it is kept; `false` also for an index outside `0..<count`.
    @discardableResult
    public func emitLatest(_ value: some PartialOutput, to index: Int) -> Bool {
        guard taskIDs.indices.contains(index) else { return false }
        return lifecycle.emitLatest(value, for: taskIDs[index])
    }

    /// Reports the batch's progress to every member's task as a fraction `0...1` (clamped).
    public func report(fraction: Double, step: String? = nil) {
        for id in taskIDs { lifecycle.report(id, fraction: fraction, step: step) }
    }
}
