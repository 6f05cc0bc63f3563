// The storage side of FIFOSemaphore: the parked waiters, their timers, and the lock around the state
// machine with the atomic word frozen while it is held. The public API is in FIFOSemaphore.swift, the rules
// in FIFOSemaphoreStateMachine.swift.

extension FIFOSemaphore {
    /// A parked caller: its continuation, and the timer of its deadline if it has one. Resuming or failing
    /// it stops the timer.
    struct Waiter: Sendable {
        let continuation: UnsafeContinuation<Void, any Error>
        let timer: Task<Void, Never>?

        func resume() {
            timer?.cancel()
            continuation.resume()
        }

        func fail(_ error: any Error) {
            timer?.cancel()
            continuation.resume(throwing: error)
        }
    }

    /// A deadline, boxed. `ContinuousClock.Instant` is a resilient type: each copy of one in an async frame
    /// is a separate, dynamically sized allocation, which every waiting task would hold. A reference is
    /// one word, and only callers that set a deadline pay for the box.
    @usableFromInline
    final class Deadline: Sendable {
        let instant: ContinuousClock.Instant

        @usableFromInline
        init(_ instant: ContinuousClock.Instant) {
            self.instant = instant
        }
    }

    /// What a waiter asks for, captured as one value by the waiting closures.
    struct WaitRequest: Sendable {
        var ticket: Ticket
        var weight: Int
        var deadline: Deadline?
    }

    func enqueue(_ continuation: UnsafeContinuation<Void, any Error>, for request: WaitRequest) {
        // A timer that fires before the waiter is stored finds nothing to remove; the clock read below,
        // under the lock, is what honours it. Cancellation likewise.
        let waiter = Waiter(
            continuation: continuation,
            timer: request.deadline.map { scheduleTimeout(of: request.ticket, at: $0.instant) }
        )
        let action = locked { machine in
            machine.acquire(
                ticket: request.ticket.rawValue,
                weight: request.weight,
                continuation: waiter,
                isCancelled: Task.isCancelled,
                isExpired: request.deadline.map { ContinuousClock.now >= $0.instant } ?? false
            )
        }
        switch action {
        case .granted:
            waiter.resume()
        case .enqueued:
            break
        case .failed(let reason):
            waiter.fail(error(for: reason))
        }
    }

    func scheduleTimeout(of ticket: Ticket, at deadline: ContinuousClock.Instant) -> Task<Void, Never> {
        Task {
            do {
                try await Task.sleep(until: deadline, clock: .continuous)
            } catch {
                return  // the acquire finished first
            }
            self.remove(ticket, because: .timedOut)
        }
    }

    /// Fails a queued waiter and serves those behind it that now fit; does nothing if it is not queued.
    func remove(_ ticket: Ticket, because reason: FIFOSemaphoreStateMachine<Waiter>.Failure) {
        guard let removal = locked({ $0.remove(ticket: ticket.rawValue) }) else { return }
        removal.continuation.fail(error(for: reason))
        resume(removal.grants)
    }

    // MARK: Internals

    /// Runs `body` on the state machine under the lock, with the atomic word frozen for the duration:
    /// `freeze` sets a flag so the fast paths stay out and loads the permit count into the machine;
    /// afterwards the machine's state is published back and the flag cleared if nobody waits.
    func locked<Result>(
        _ body: (inout FIFOSemaphoreStateMachine<Waiter>) -> Result
    ) -> Result {
        machine.withLock { machine in
            var current = word.load(ordering: .relaxed)
            while current & Self.flagBits == 0 {
                let (exchanged, original) = word.compareExchange(
                    expected: current,
                    desired: current | Self.queuedBit,
                    ordering: .acquiringAndReleasing
                )
                if exchanged { break }
                current = original
            }
            machine.available = current >> Self.stateShift
            let result = body(&machine)
            var published = machine.available << Self.stateShift
            if !machine.queue.isEmpty { published |= Self.queuedBit }
            if machine.isClosed { published |= Self.closedBit }
            word.store(published, ordering: .releasing)
            return result
        }
    }

    func resume(_ grants: FIFOSemaphoreStateMachine<Waiter>.Grants) {
        switch grants {
        case .none:
            break
        case .one(let waiter):
            waiter.resume()
        case .many(let waiters):
            for waiter in waiters {
                waiter.resume()
            }
        }
    }

    func error(for reason: FIFOSemaphoreStateMachine<Waiter>.Failure) -> any Error {
        switch reason {
        case .cancelled:
            return CancellationError()
        case .timedOut:
            return CallQueueError(
                .timedOut,
                "the deadline passed while waiting for permits of a \(permits)-permit semaphore"
            )
        case .closed:
            return CallQueueError(.closed, "the semaphore is closed and grants no more permits")
        }
    }
}
