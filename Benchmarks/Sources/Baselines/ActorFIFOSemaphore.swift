/// The comparison baseline: the FIFO semaphore a developer writes when no library is at hand. An actor
/// holds the free permits and an array of checked continuations; cancellation goes through
/// `withTaskCancellationHandler` and hops back onto the actor.
///
/// The array keeps a head index instead of calling `removeFirst()`, so that hand-off is O(1) and the
/// baseline is not slowed by an avoidable quadratic cost. Cancellation searches the array from the head.
public actor ActorFIFOSemaphore {
    private struct Waiter {
        var id: UInt64
        var continuation: CheckedContinuation<Void, any Error>?
    }

    private var available: Int
    private var waiters: [Waiter] = []
    private var head = 0
    private var nextID: UInt64 = 0
    private var liveWaiters = 0

    public init(permits: Int) {
        available = permits
    }

    /// The number of queued waiters.
    public var waitingCount: Int { liveWaiters }

    public func acquire() async throws {
        if available > 0 && liveWaiters == 0 {
            available -= 1
            return
        }
        let id = nextID
        nextID += 1
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                waiters.append(Waiter(id: id, continuation: continuation))
                liveWaiters += 1
            }
        } onCancel: {
            Task { await self.cancel(id) }
        }
    }

    public func release() {
        while head < waiters.count {
            let waiter = waiters[head]
            waiters[head].continuation = nil
            head += 1
            if let continuation = waiter.continuation {
                liveWaiters -= 1
                compactIfDrained()
                continuation.resume()
                return
            }
        }
        compactIfDrained()
        available += 1
    }

    private func cancel(_ id: UInt64) {
        guard let index = waiters[head...].firstIndex(where: { $0.id == id }),
            let continuation = waiters[index].continuation
        else { return }
        waiters[index].continuation = nil
        liveWaiters -= 1
        while head < waiters.count && waiters[head].continuation == nil { head += 1 }
        compactIfDrained()
        continuation.resume(throwing: CancellationError())
    }

    private func compactIfDrained() {
        if head == waiters.count {
            waiters.removeAll(keepingCapacity: true)
            head = 0
        }
    }
}
