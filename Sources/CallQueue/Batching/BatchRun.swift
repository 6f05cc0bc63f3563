/// What the lifecycle's state knows of a batch: an object identity, handed to the members it pulls in.
class BatchRunBase: @unchecked Sendable {
    /// What the batch cost (run time, size, memory window), once its body has returned.
    var memberStats: PerfStats? { nil }

    /// A member that will not take part after all (its caller was gone before it could).
    func cancelMember(ticket: UInt64) {}
}

/// One batch of a ``Batcher``: its members (their tickets, task ids and inputs, in order), their outputs as
/// the body delivers them, and which of them were cancelled. The body runs in a task of the batcher's own;
/// each member awaits its own output.
final class BatchRun<Input: Sendable, Output: Sendable>: BatchRunBase, @unchecked Sendable {
    struct Member {
        var ticket: UInt64
        var taskID: TaskID
        var input: Input
        var outcome: Result<Output, any Error>?
        var waiter: CheckedContinuation<Output, any Error>?
        var isCancelled = false
    }

    private struct State {
        var members: [Member] = []
        var started = false
        var bodyTask: Task<Void, Never>?
        var stats = PerfStats(queued: .zero, running: .zero)
    }

    private let state = LockedState(State())

    var size: Int { state.withLock { $0.members.count } }
    var taskIDs: [TaskID] { state.withLock { $0.members.map(\.taskID) } }
    var inputs: [Input] { state.withLock { $0.members.map(\.input) } }
    override var memberStats: PerfStats? { state.withLock { $0.stats.batchSize == nil ? nil : $0.stats } }

    func add(ticket: UInt64, taskID: TaskID, input: Input) {
        state.withLock { $0.members.append(Member(ticket: ticket, taskID: taskID, input: input)) }
    }

    func isCancelled(_ index: Int) -> Bool {
        state.withLock { $0.members.indices.contains(index) && $0.members[index].isCancelled }
    }

    /// The body is about to run: a cancel of every member from now on cancels `task`.
    func start(_ task: Task<Void, Never>) {
        let cancelNow = state.withLock { state -> Bool in
            state.started = true
            state.bodyTask = task
            return !state.members.isEmpty && state.members.allSatisfy(\.isCancelled)
        }
        if cancelNow { task.cancel() }
    }

    /// The body's outputs, one per member in order, with what the batch cost.
    func deliver(_ outcomes: [Result<Output, any Error>], stats: PerfStats) {
        let resumes = state.withLock { state -> [(CheckedContinuation<Output, any Error>, Result<Output, any Error>)] in
            state.stats = stats
            var resumes: [(CheckedContinuation<Output, any Error>, Result<Output, any Error>)] = []
            for index in state.members.indices where state.members[index].outcome == nil {
                let outcome = outcomes[index]
                state.members[index].outcome = outcome
                if let waiter = state.members[index].waiter {
                    state.members[index].waiter = nil
                    resumes.append((waiter, outcome))
                }
            }
            return resumes
        }
        for (waiter, outcome) in resumes { waiter.resume(with: outcome) }
    }

    /// Waits for this member's output. Cancelling the waiting task (or the member by id, through
    /// ``cancel(ticket:)``) ends the wait at once with `CancellationError`; the batch goes on.
    func output(ticket: UInt64) async throws -> Output {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Output, any Error>) in
                let ready = state.withLock { state -> Result<Output, any Error>? in
                    guard let index = state.members.firstIndex(where: { $0.ticket == ticket }) else {
                        return .failure(CancellationError())
                    }
                    if let outcome = state.members[index].outcome { return outcome }
                    if state.members[index].isCancelled || Task.isCancelled { return .failure(CancellationError()) }
                    state.members[index].waiter = continuation
                    return nil
                }
                if let ready { continuation.resume(with: ready) }
            }
        } onCancel: {
            cancel(ticket: ticket)
        }
    }

    /// Cancels one member: its wait ends with `CancellationError`; when every member is cancelled, so is
    /// the body.
    override func cancelMember(ticket: UInt64) {
        cancel(ticket: ticket)
    }

    func cancel(ticket: UInt64) {
        let (waiter, bodyTask) = state.withLock {
            state -> (CheckedContinuation<Output, any Error>?, Task<Void, Never>?) in
            guard let index = state.members.firstIndex(where: { $0.ticket == ticket }),
                state.members[index].outcome == nil
            else { return (nil, nil) }
            state.members[index].isCancelled = true
            state.members[index].outcome = .failure(CancellationError())
            let waiter = state.members[index].waiter
            state.members[index].waiter = nil
            let everyone = state.members.allSatisfy(\.isCancelled)
            return (waiter, everyone && state.started ? state.bodyTask : nil)
        }
        waiter?.resume(throwing: CancellationError())
        bodyTask?.cancel()
    }
}
