// AUTOMATIC1111's four call wrappers, as higher-order functions over any parameter list. Each returns a
// function with the same parameters. The first throws what the wrapped function throws; the other three
// never throw: they return a ``CallResponse`` holding the outputs, or the fallback and the error.

/// Wraps `function` so that each call holds a slot of `group` while it runs: AUTOMATIC1111's
/// `wrap_queued_call`. No task lifecycle, no error handling.
///
/// `fairness` is every call's key and priority in a group with fair share; `nil`: each call takes
/// ``CallFairness/current`` from the task that makes it.
public func wrapQueuedCall<each Argument, Output>(
    _ queue: CallQueue,
    group: ConcurrencyGroupID = .default,
    fairness: CallFairness? = nil,
    _ function: @escaping @Sendable (repeat each Argument) async throws -> Output
) -> @Sendable (repeat each Argument) async throws -> Output {
    { (argument: repeat each Argument) in
        try await queue.runQueued(group: group, fairness: fairness) { try await function(repeat each argument) }
    }
}

/// Wraps `function` as a GPU job: queued in `group`, tracked by a task whose id is the first argument when
/// it is a `task(...)` string (AUTOMATIC1111's rule) or generated otherwise, with its cost measured:
/// AUTOMATIC1111's `wrap_gradio_gpu_call`.
///
/// The wrapped function never throws. A failure, a rejection (queue full) or a cancellation comes back as
/// a response with `fallback`'s outputs and the error; failures are also reported to the queue's observer
/// with the arguments, cut at 131,072 characters with a note of the original length.
///
/// `fairness` is every call's key and priority in a group with fair share; `nil`: each call takes
/// ``CallFairness/current`` from the task that makes it.
public func wrapGPUCall<each Argument, Output: Sendable>(
    _ queue: CallQueue,
    group: ConcurrencyGroupID = .default,
    fairness: CallFairness? = nil,
    fallback: CallFallback<Output>? = nil,
    _ function: @escaping @Sendable (repeat each Argument) async throws -> Output
) -> @Sendable (repeat each Argument) async -> CallResponse<Output> {
    { (argument: repeat each Argument) in
        let all = anyArray(repeat each argument)
        let id = all.first.flatMap(TaskID.fromFirstArgument)
        do {
            let outcome = try await queue.performJob(
                id: id,
                group: group,
                weight: nil,
                fairness: fairness,
                deadline: nil,
                arguments: all,
                keepResult: { $0 }
            ) { _ in try await function(repeat each argument) }
            return CallResponse(outcome, fallback: fallback)
        } catch {
            // Not admitted: nothing ran and nothing was registered.
            queue.configuration.observer?.callDidFail(CallQueue.failureReport(error, taskID: id, arguments: all))
            let outcome = CallQueue.JobOutcome<Output>(
                result: .failure(error),
                taskID: id,
                stats: PerfStats(queued: .zero, running: .zero)
            )
            return CallResponse(outcome, fallback: fallback)
        }
    }
}

/// Wraps `function` with error capture and timing, unqueued; afterwards it clears the control flags of the
/// task named by a `task(...)` first argument: AUTOMATIC1111's `wrap_gradio_call`.
public func wrapCall<each Argument, Output: Sendable>(
    _ queue: CallQueue,
    fallback: CallFallback<Output>? = nil,
    _ function: @escaping @Sendable (repeat each Argument) async throws -> Output
) -> @Sendable (repeat each Argument) async -> CallResponse<Output> {
    wrapUnqueued(queue, fallback: fallback, resetsFlags: true, function)
}

/// Wraps `function` with error capture and timing, touching no task: AUTOMATIC1111's
/// `wrap_gradio_call_no_job`, for actions that are not jobs (saving files, settings).
public func wrapCallNoJob<each Argument, Output: Sendable>(
    _ queue: CallQueue,
    fallback: CallFallback<Output>? = nil,
    _ function: @escaping @Sendable (repeat each Argument) async throws -> Output
) -> @Sendable (repeat each Argument) async -> CallResponse<Output> {
    wrapUnqueued(queue, fallback: fallback, resetsFlags: false, function)
}

/// The two unqueued wrappers; `resetsFlags` is the job-state reset of `wrap_gradio_call`.
private func wrapUnqueued<each Argument, Output: Sendable>(
    _ queue: CallQueue,
    fallback: CallFallback<Output>?,
    resetsFlags: Bool,
    _ function: @escaping @Sendable (repeat each Argument) async throws -> Output
) -> @Sendable (repeat each Argument) async -> CallResponse<Output> {
    { (argument: repeat each Argument) in
        let all = anyArray(repeat each argument)
        let id = resetsFlags ? all.first.flatMap(TaskID.fromFirstArgument) : nil
        let outcome = await queue.performCall(id: id, resetFlags: resetsFlags, arguments: all) {
            try await function(repeat each argument)
        }
        return CallResponse(outcome, fallback: fallback)
    }
}

/// A call's arguments as a list: for the first-argument task-id rule and the failure report.
private func anyArray<each Argument>(_ argument: repeat each Argument) -> [Any] {
    var all: [Any] = []
    for value in repeat each argument { all.append(value) }
    return all
}
