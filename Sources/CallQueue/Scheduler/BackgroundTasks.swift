/// The unstructured tasks a queue starts on its own (submitted jobs, batches, position flushes, cluster
/// senders), kept so that a shutdown can cancel them and wait until none is left.
///
/// Each task is counted from its start to its end; ``cancelAll()`` cancels those alive, and ``idle()`` returns
/// once none is. Spawning costs two short lock holds, not a lookup per task.
final class BackgroundTasks: Sendable {
    private struct State {
        var nextKey = 0
        var cancellers: [Int: @Sendable () -> Void] = [:]
        /// Tasks that ended before their canceller was stored.
        var endedEarly: Set<Int> = []
        var live = 0
        var idleWaiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state = LockedState(State())

    /// Tasks alive now.
    var count: Int { state.withLock { $0.live } }

    /// Starts `operation` in a task of its own, counted until it ends.
    @discardableResult
    func spawn<Success: Sendable>(
        _ operation: sending @escaping @isolated(any) () async -> Success
    ) -> Task<Success, Never> {
        let key = state.withLock { state -> Int in
            state.nextKey += 1
            state.live += 1
            return state.nextKey
        }
        let task = Task {
            let result = await operation()
            self.ended(key)
            return result
        }
        state.withLock { state in
            if state.endedEarly.remove(key) == nil { state.cancellers[key] = { task.cancel() } }
        }
        return task
    }

    private func ended(_ key: Int) {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            if state.cancellers.removeValue(forKey: key) == nil { state.endedEarly.insert(key) }
            state.live -= 1
            guard state.live == 0 else { return [] }
            defer { state.idleWaiters.removeAll() }
            return state.idleWaiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Cancels every task alive now.
    func cancelAll() {
        let cancellers = state.withLock { Array($0.cancellers.values) }
        for cancel in cancellers { cancel() }
    }

    /// Returns once no task is alive.
    func idle() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let idleNow = state.withLock { state -> Bool in
                if state.live == 0 { return true }
                state.idleWaiters.append(continuation)
                return false
            }
            if idleNow { continuation.resume() }
        }
    }
}
