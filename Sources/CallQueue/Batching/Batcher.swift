/// Runs waiting calls of one function together, as one batch in one slot of a group: dynamic batching.
///
/// Made by ``CallQueue/makeBatcher(group:maxBatchSize:maxDelay:_:)``. Each call is a task of its own (id,
/// status, updates, cancel by id, history) that waits in its group's line like any other call. When the
/// group's next slot comes to a call of this batcher, that call's batch takes up to ``maxBatchSize`` waiting
/// calls of the batcher, in arrival order, and runs them through the body at once. A batch's place in line
/// is its oldest member's; ordinary calls of the group keep their places around it.
///
/// ```swift
/// let txt2img = queue.makeBatcher(group: "gpu", maxBatchSize: 8, maxDelay: .milliseconds(20)) {
///     (prompts: [String], context: BatchContext) async throws -> [Image] in
///     try await model.generate(prompts, on: context.slot)
/// }
/// let image = try await txt2img("a red fox", id: taskID)
/// ```
///
/// - Delay: a batch that is not full waits up to ``maxDelay`` after its slot came for more calls to arrive;
///   `.zero` takes whoever is waiting and starts at once (Gradio's behaviour).
/// - Outputs: the body returns one output per input, in order. A count mismatch fails every member with
///   ``CallQueueError/Code/invalidBatchOutput``; the per-member form fails members one by one.
/// - Cancel: a member cancelled while it waits leaves the line; one cancelled while its batch runs gets
///   `CancellationError` at once while the batch goes on (``BatchContext/isCancelled(_:)`` tells the
///   body); cancelling every member cancels the body. The slot is held until the body returns.
public final class Batcher<Input: Sendable, Output: Sendable>: Sendable {
    /// The group whose slots the batches take.
    public let group: ConcurrencyGroupID
    /// The most members in one batch, in `1...4096`.
    public let maxBatchSize: Int
    /// The longest a batch holds its slot waiting for companions, in `0...60 s`.
    public let maxDelay: Duration

    let queue: CallQueue
    let body: @Sendable ([Input], BatchContext) async throws -> [Result<Output, any Error>]
    /// Inputs of admitted members not yet in a batch, by task id.
    private let pending = LockedState<[TaskID: Input]>([:])

    init(
        queue: CallQueue,
        group: ConcurrencyGroupID,
        maxBatchSize: Int,
        maxDelay: Duration,
        body: @escaping @Sendable ([Input], BatchContext) async throws -> [Result<Output, any Error>]
    ) {
        self.queue = queue
        self.group = group
        self.maxBatchSize = min(max(maxBatchSize, 1), 4_096)
        self.maxDelay = min(max(maxDelay, .zero), .seconds(60))
        self.body = body
    }

    /// Inputs held for members not yet in a batch.
    var pendingCount: Int { pending.withLock { $0.count } }

    var tag: GroupState.BatcherTag {
        GroupState.BatcherTag(id: ObjectIdentifier(self), maxBatchSize: maxBatchSize)
    }

    /// Runs one input as a member of a batch and returns its output.
    ///
    /// - Parameters:
    ///   - input: This call's input.
    ///   - id: The member's task id; a new one is generated when `nil`.
    ///   - deadline: When to give up waiting for a batch; `nil` waits as long as needed.
    /// - Throws: ``CallQueueError`` when not admitted (as ``CallQueue/submit(id:group:weight:deadline:_:)``),
    ///   `CancellationError` when cancelled, ``CallQueueError/Code/timedOut`` at the deadline, or the error
    ///   the body gave this member.
    public func callAsFunction(
        _ input: Input, id: TaskID? = nil, deadline: ContinuousClock.Instant? = nil
    )
        async throws -> Output
    {
        let job = try admit(input, id: id)
        defer { forget(job) }
        return try await queue.runJob(job, deadline: deadline, keepResult: { $0 }, arguments: [input]) { context in
            try await self.takePart(job, context: context)
        }.result.get()
    }

    /// Admits one input as a member and returns at once with its handle; it waits and runs in a task the
    /// queue owns. See ``CallQueue/submit(id:group:weight:deadline:_:)``.
    public func submit(
        _ input: Input, id: TaskID? = nil, deadline: ContinuousClock.Instant? = nil
    ) throws
        -> JobHandle<Output>
    {
        let job = try admit(input, id: id)
        let task = Task {
            defer { self.forget(job) }
            return await self.queue.runJob(job, deadline: deadline, keepResult: { $0 }, arguments: [input]) {
                context in
                try await self.takePart(job, context: context)
            }
        }
        return JobHandle(id: job.id, queue: queue, task: task)
    }

    private func admit(_ input: Input, id: TaskID?) throws -> CallQueue.AdmittedJob {
        let id = id ?? TaskID.generate()
        pending.withLock { $0[id] = input }
        do {
            return try queue.admitJob(id: id, group: group, weight: nil, batcher: tag)
        } catch {
            pending.withLock { $0[id] = nil }
            throw error
        }
    }

    /// The part of a granted member: lead a new batch, or wait for its output in the batch that took it.
    private func takePart(_ job: CallQueue.AdmittedJob, context: CallContext) async throws -> Output {
        if let run = job.control.batch as? BatchRun<Input, Output> {
            return try await awaitOutput(of: job, in: run)
        }
        let run = BatchRun<Input, Output>()
        job.control.batch = run
        let lifecycle = queue.lifecycle
        let now = lifecycle.clock.now
        var effects = LifecycleState.Effects()
        let (held, pulled) = lifecycle.state.withLock { state in
            let held = state.lead(job.id)
            let pulled = state.pullBatchMembers(
                of: ObjectIdentifier(self), group: group, limit: maxBatchSize - 1, slot: context.slot, run: run,
                now: now, effects: &effects)
            return (held, pulled)
        }
        run.add(ticket: ticketOf(job), taskID: job.id, input: pending.withLock { $0.removeValue(forKey: job.id)! })
        adopt(pulled, into: run)
        lifecycle.run(effects)
        guard let held else { throw CancellationError() }
        let batchTask = Task { await self.runBatch(run, held: held, slotFreeAt: now) }
        run.start(batchTask)
        return try await awaitOutput(of: job, in: run)
    }

    private func adopt(_ pulled: [(ticket: UInt64, taskID: TaskID)], into run: BatchRun<Input, Output>) {
        let inputs = pending.withLock { pending in pulled.map { pending.removeValue(forKey: $0.taskID) } }
        for (member, input) in zip(pulled, inputs) {
            guard let input else { continue }
            run.add(ticket: member.ticket, taskID: member.taskID, input: input)
        }
    }

    /// A member is done (served, cancelled, timed out): its input and its place in the batcher's record go.
    private func forget(_ job: CallQueue.AdmittedJob) {
        pending.withLock { $0[job.id] = nil }
        let ticket = ticketOf(job)
        queue.lifecycle.state.withLock {
            $0.forgetBatchMember(ticket: ticket, of: ObjectIdentifier(self), group: group)
        }
    }

    private func ticketOf(_ job: CallQueue.AdmittedJob) -> UInt64 {
        switch job.admitted.outcome {
        case .granted(let held): return held.ticket
        case .queued(let ticket): return ticket
        }
    }

    private func awaitOutput(of job: CallQueue.AdmittedJob, in run: BatchRun<Input, Output>) async throws -> Output {
        let ticket = ticketOf(job)
        if job.control.setCanceller({ run.cancel(ticket: ticket) }) { run.cancel(ticket: ticket) }
        defer { job.control.clearCanceller() }
        return try await run.output(ticket: ticket)
    }

    /// The batch's own task: waits out the delay for companions, runs the body inside one memory window,
    /// hands each member its output, and gives the slot back.
    private func runBatch(
        _ run: BatchRun<Input, Output>, held: LifecycleState.Held, slotFreeAt: ContinuousClock.Instant
    ) async {
        let lifecycle = queue.lifecycle
        if run.size < maxBatchSize && maxDelay > .zero {
            try? await lifecycle.clock.sleep(until: slotFreeAt + maxDelay)
            let now = lifecycle.clock.now
            var effects = LifecycleState.Effects()
            let pulled = lifecycle.state.withLock { state in
                state.pullBatchMembers(
                    of: ObjectIdentifier(self), group: group, limit: maxBatchSize - run.size, slot: held.slot,
                    run: run, now: now, effects: &effects)
            }
            adopt(pulled, into: run)
            lifecycle.run(effects)
        }
        let members = run.taskIDs
        let batchContext = BatchContext(
            group: group, slot: held.slot, taskIDs: members, lifecycle: lifecycle,
            cancelled: { [run] in run.isCancelled($0) })
        let window = queue.configuration.memorySampler?.openWindow()
        let start = lifecycle.clock.now
        var outcomes: [Result<Output, any Error>]
        do {
            outcomes = try await body(run.inputs, batchContext)
            if outcomes.count != members.count {
                let error = CallQueueError(
                    .invalidBatchOutput,
                    "the batch body of group '\(group)' returned \(outcomes.count) outputs for \(members.count) "
                        + "inputs; it must return one output per input, in order",
                    group: group)
                outcomes = Array(repeating: .failure(error), count: members.count)
            }
        } catch {
            outcomes = Array(repeating: .failure(error), count: members.count)
        }
        var stats = PerfStats(queued: .zero, running: lifecycle.clock.now - start)
        stats.batchSize = members.count
        switch window?.close() {
        case .success(let memory): stats.memory = memory
        case .failure(let unavailable): stats.memoryUnavailableReason = unavailable.description
        case nil: break
        }
        queue.configuration.observer?.batchDidRun(group: group, size: members.count, stats: stats)
        run.deliver(outcomes, stats: stats)
        queue.release(held)
    }
}

extension CallQueue {
    /// Makes a ``Batcher``: calls of one function that run together, up to `maxBatchSize` at a time, in one
    /// slot of `group`.
    ///
    /// - Parameters:
    ///   - group: The group whose slots the batches take, in its FIFO order.
    ///   - maxBatchSize: The most members in one batch; clamped to `1...4096`.
    ///   - maxDelay: The longest a batch waits for companions after its slot came; `.zero`: none (take who
    ///     is waiting). Clamped to `0...60 s`.
    ///   - body: Runs one batch: the inputs in arrival order, and the batch's context. Returns one output per
    ///     input, in order.
    public func makeBatcher<Input: Sendable, Output: Sendable>(
        group: ConcurrencyGroupID = .default,
        maxBatchSize: Int,
        maxDelay: Duration = .zero,
        _ body: @escaping @Sendable ([Input], BatchContext) async throws -> [Output]
    ) -> Batcher<Input, Output> {
        Batcher(queue: self, group: group, maxBatchSize: maxBatchSize, maxDelay: maxDelay) { inputs, context in
            try await body(inputs, context).map { .success($0) }
        }
    }

    /// Makes a ``Batcher`` whose body gives each member its own result, so one member can fail without the
    /// others.
    public func makeBatcher<Input: Sendable, Output: Sendable>(
        group: ConcurrencyGroupID = .default,
        maxBatchSize: Int,
        maxDelay: Duration = .zero,
        perMember body: @escaping @Sendable ([Input], BatchContext) async throws -> [Result<Output, any Error>]
    ) -> Batcher<Input, Output> {
        Batcher(queue: self, group: group, maxBatchSize: maxBatchSize, maxDelay: maxDelay, body: body)
    }
}
