/// What the lifecycle's state knows of a batch: an object identity that holds a slot, a task to launch, and
/// a signal that ends its wait for companions.
class BatchRunBase: @unchecked Sendable {
    private struct Window {
        var startNow = false
        var sleeper: Task<Void, Never>?
    }

    private let window = LockedState(Window())

    /// What the batch cost (run time, size, memory window), once its body has returned.
    var memberStats: PerfStats? { nil }

    /// Starts the batch's task, which holds `held` until its body returns.
    func launch(_ held: LifecycleState.Held) {}

    /// A member that will not take part after all (its caller was gone before it could).
    func cancelMember(ticket: UInt64) {}

    /// The batch takes no more members (full, or every member left): its wait for companions ends now.
    func startNow() {
        let sleeper = window.withLock { window -> Task<Void, Never>? in
            window.startNow = true
            return window.sleeper
        }
        sleeper?.cancel()
    }

    /// Waits for companions until `deadline`, or until ``startNow()``.
    func waitForCompanions(until deadline: ContinuousClock.Instant, on clock: LifecycleClock) async {
        let sleeper = Task { _ = try? await clock.sleep(until: deadline) }
        let startNow = window.withLock { window -> Bool in
            if !window.startNow { window.sleeper = sleeper }
            return window.startNow
        }
        if startNow { sleeper.cancel() }
        await sleeper.value
        window.withLock { $0.sleeper = nil }
    }
}

/// One batch of a ``Batcher``: its members (their tickets, task ids and inputs, in order) once its body
/// starts, their outputs as the body delivers them, and which of them were cancelled. The body runs in a task
/// of the batch's own; each member awaits its own output, and may do so before the batch has started.
final class BatchRun<Input: Sendable, Output: Sendable>: BatchRunBase, @unchecked Sendable {
    struct Member {
        var ticket: UInt64
        var taskID: TaskID
        var input: Input
    }

    private struct State {
        /// Set when the body starts; until then the lifecycle's state holds the membership.
        var members: [Member]?
        var outcomes: [UInt64: Result<Output, any Error>] = [:]
        var waiters: [UInt64: CheckedContinuation<Output, any Error>] = [:]
        var cancelled: Set<UInt64> = []
        var bodyTask: Task<Void, Never>?
        var stats = PerfStats(queued: .zero, running: .zero)
    }

    private let state = LockedState(State())
    private let launcher: @Sendable (BatchRun, LifecycleState.Held) -> Void
    /// Takes a member cancelled before the body started out of the forming batch.
    private let leaveForming: @Sendable (BatchRun, UInt64) -> Void

    init(
        launch: @escaping @Sendable (BatchRun, LifecycleState.Held) -> Void,
        leaveForming: @escaping @Sendable (BatchRun, UInt64) -> Void
    ) {
        launcher = launch
        self.leaveForming = leaveForming
    }

    override func launch(_ held: LifecycleState.Held) {
        launcher(self, held)
    }

    override var memberStats: PerfStats? { state.withLock { $0.stats.batchSize == nil ? nil : $0.stats } }

    /// The task the batch runs in: cancelled once every member of a started batch is.
    func attach(_ task: Task<Void, Never>) {
        let cancelNow = state.withLock { state -> Bool in
            state.bodyTask = task
            guard let members = state.members else { return false }
            return members.allSatisfy { state.cancelled.contains($0.ticket) }
        }
        if cancelNow { task.cancel() }
    }

    /// The body is about to run with `members`, in order. Returns whether any of them is still wanted.
    func begin(_ members: [Member]) -> Bool {
        state.withLock { state in
            state.members = members
            return members.contains { !state.cancelled.contains($0.ticket) }
        }
    }

    func isCancelled(_ index: Int) -> Bool {
        state.withLock { state in
            guard let members = state.members, members.indices.contains(index) else { return false }
            return state.cancelled.contains(members[index].ticket)
        }
    }

    /// The body's outputs, one per member in order, with what the batch cost.
    func deliver(_ outcomes: [Result<Output, any Error>], stats: PerfStats) {
        let resumes = state.withLock { state -> [(CheckedContinuation<Output, any Error>, Result<Output, any Error>)] in
            state.stats = stats
            var resumes: [(CheckedContinuation<Output, any Error>, Result<Output, any Error>)] = []
            for (member, outcome) in zip(state.members ?? [], outcomes) where state.outcomes[member.ticket] == nil {
                if let waiter = state.waiters.removeValue(forKey: member.ticket) {
                    resumes.append((waiter, outcome))
                } else {
                    state.outcomes[member.ticket] = outcome
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
                    if let outcome = state.outcomes.removeValue(forKey: ticket) { return outcome }
                    if state.cancelled.contains(ticket) || Task.isCancelled { return .failure(CancellationError()) }
                    state.waiters[ticket] = continuation
                    return nil
                }
                if let ready { continuation.resume(with: ready) }
            }
        } onCancel: {
            cancel(ticket: ticket)
        }
    }

    override func cancelMember(ticket: UInt64) {
        cancel(ticket: ticket)
    }

    /// Cancels one member: its wait ends with `CancellationError`. Before the body starts, the member leaves
    /// the forming batch; after, when every member is cancelled, so is the body.
    func cancel(ticket: UInt64) {
        let (waiter, bodyTask, beforeStart) = state.withLock {
            state -> (CheckedContinuation<Output, any Error>?, Task<Void, Never>?, Bool) in
            guard !state.cancelled.contains(ticket) else { return (nil, nil, false) }
            if let members = state.members {
                guard members.contains(where: { $0.ticket == ticket }), state.outcomes[ticket] == nil else {
                    return (nil, nil, false)
                }
            }
            state.cancelled.insert(ticket)
            let waiter = state.waiters.removeValue(forKey: ticket)
            if waiter == nil { state.outcomes[ticket] = .failure(CancellationError()) }
            guard let members = state.members else { return (waiter, nil, true) }
            let everyone = members.allSatisfy { state.cancelled.contains($0.ticket) }
            return (waiter, everyone ? state.bodyTask : nil, false)
        }
        waiter?.resume(throwing: CancellationError())
        bodyTask?.cancel()
        if beforeStart { leaveForming(self, ticket) }
    }
}
