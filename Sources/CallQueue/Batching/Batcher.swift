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
///   `.zero` takes whoever is waiting and starts at once (Gradio's behaviour). A batch that reaches
///   ``maxBatchSize`` starts at once. A batcher forms one batch at a time: calls that arrive while it forms
///   and has room join it.
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

    var tag: GroupState.BatcherTag {
        // The batches hold their batcher strongly: a batch runs for its members even when the application has
        // dropped the batcher. Nothing in the batcher holds a batch, so there is no cycle.
        GroupState.BatcherTag(id: ObjectIdentifier(self), maxBatchSize: maxBatchSize) {
            BatchRun<Input, Output>(
                launch: { run, held in
                    let task = self.queue.scheduler.background.spawn { await self.runBatch(run, held: held) }
                    run.attach(task)
                },
                leaveForming: { run, ticket in self.leaveForming(run, ticket: ticket) })
        }
    }

    /// Runs one input as a member of a batch and returns its output.
    ///
    /// - Parameters:
    ///   - input: This call's input.
    ///   - id: The member's task id; a new one is generated when `nil`.
    ///   - fairness: The member's key and priority in a group with fair share: a batch takes its members in
    ///     the group's order. `nil`: ``CallFairness/current``.
    ///   - deadline: When to give up waiting for a batch; `nil` waits as long as needed.
    /// - Throws: ``CallQueueError`` when not admitted (as ``CallQueue/submit(id:group:weight:fairness:deadline:_:)``),
    ///   `CancellationError` when cancelled, ``CallQueueError/Code/timedOut`` at the deadline, or the error
    ///   the body gave this member.
    public func callAsFunction(
        _ input: Input, id: TaskID? = nil, fairness: CallFairness? = nil, deadline: ContinuousClock.Instant? = nil
    )
        async throws -> Output
    {
        let job = try admit(input, id: id, fairness: fairness)
        defer { forget(job) }
        return try await queue.runJob(job, deadline: deadline, keepResult: { $0 }, arguments: [input]) { context in
            try await self.takePart(job, context: context)
        }.result.get()
    }

    /// Admits one input as a member and returns at once with its handle; it waits and runs in a task the
    /// queue owns. See ``CallQueue/submit(id:group:weight:fairness:deadline:_:)``.
    public func submit(
        _ input: Input, id: TaskID? = nil, fairness: CallFairness? = nil, deadline: ContinuousClock.Instant? = nil
    ) throws
        -> JobHandle<Output>
    {
        let job = try admit(input, id: id, fairness: fairness)
        let task = queue.scheduler.background.spawn {
            defer { self.forget(job) }
            return await self.queue.runJob(job, deadline: deadline, keepResult: { $0 }, arguments: [input]) {
                context in
                try await self.takePart(job, context: context)
            }
        }
        return JobHandle(id: job.id, queue: queue, task: task)
    }

    /// Admits a member with its input in one step: the input travels with its place in line, so a refused
    /// admission (a duplicate id, a full queue) touches no other member.
    private func admit(_ input: Input, id: TaskID?, fairness: CallFairness?) throws -> CallQueue.AdmittedJob {
        try queue.admitJob(
            id: id ?? TaskID.generate(), group: group, weight: nil, fairness: fairness, batcher: tag, input: input)
    }

    /// A granted member's part: wait for its output from the batch it was granted into.
    private func takePart(_ job: CallQueue.AdmittedJob, context: CallContext) async throws -> Output {
        guard let run = job.control.batch as? BatchRun<Input, Output> else {
            throw CallQueueError(.invalidBatchOutput, "a member of group '\(group)' was granted no batch", group: group)
        }
        let ticket = ticketOf(job)
        if job.control.setCanceller({ run.cancel(ticket: ticket) }) { run.cancel(ticket: ticket) }
        defer { job.control.clearCanceller() }
        return try await run.output(ticket: ticket)
    }

    /// A member is done (served, cancelled, timed out): its place in the batcher's record goes.
    private func forget(_ job: CallQueue.AdmittedJob) {
        let ticket = ticketOf(job)
        queue.scheduler.forgetBatchMember(ticket: ticket, of: ObjectIdentifier(self), group: group)
    }

    private func leaveForming(_ run: BatchRunBase, ticket: UInt64) {
        queue.scheduler.leaveFormingBatch(run, ticket: ticket, group: group)
    }

    private func ticketOf(_ job: CallQueue.AdmittedJob) -> UInt64 {
        switch job.admitted.outcome {
        case .granted(let held): return held.ticket
        case .queued(let ticket): return ticket
        }
    }

    /// The batch's own task: waits out the delay for companions (or until the batch is full), takes its
    /// members, runs the body inside one memory window, hands each member its output, and gives the slot back.
    private func runBatch(_ run: BatchRun<Input, Output>, held: LifecycleState.Held) async {
        let lifecycle = queue.lifecycle
        if maxDelay > .zero {
            await run.waitForCompanions(until: lifecycle.clock.now + maxDelay, on: lifecycle.clock)
        }
        let formed = queue.scheduler.startBatch(run, group: group)
        var members: [BatchRun<Input, Output>.Member] = []
        var strays: [UInt64] = []
        for member in formed {
            if let input = member.input as? Input {
                members.append(.init(ticket: member.ticket, taskID: member.taskID, input: input))
            } else {
                strays.append(member.ticket)
            }
        }
        for ticket in strays { run.cancel(ticket: ticket) }
        guard run.begin(members) else {
            // Nobody is left to serve: the slot goes back without running the body.
            run.deliver([], stats: PerfStats(queued: .zero, running: .zero))
            queue.release(held)
            return
        }
        let batchContext = BatchContext(
            group: group, slot: held.slot, taskIDs: members.map { $0.taskID }, lifecycle: lifecycle,
            cancelled: { [run] in run.isCancelled($0) })
        let window = queue.memorySampler(group: group, slot: held.slot)?.openWindow()
        let start = lifecycle.clock.now
        var outcomes: [Result<Output, any Error>]
        do {
            outcomes = try await body(members.map { $0.input }, batchContext)
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
    ///   - group: The group whose slots the batches take, in its order (arrival, or fair share).
    ///   - maxBatchSize: The most members in one batch; clamped to `1...4096`.
    ///   - maxDelay: The longest a batch waits for companions after its slot came; `.zero`: none (take who
    ///     is waiting). Clamped to `0...60 s`.
    ///   - body: Runs one batch: the inputs in the order they joined it, and the batch's context. Returns one
    ///     output per input, in order.
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
