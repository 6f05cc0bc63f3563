import Synchronization

/// The event streams open now, per client, with a cap: a client that opens more than `limitPerClient` gets
/// 429 until it closes one, so one client cannot hold thousands of connections' worth of server memory.
final class EventStreams: Sendable {
    let limitPerClient: Int
    private let state = Mutex<(total: Int, byClient: [String: Int])>((0, [:]))

    init(limitPerClient: Int) {
        self.limitPerClient = limitPerClient
    }

    /// Streams open now, all clients together.
    var count: Int { state.withLock { $0.total } }

    /// A place for one more stream of `client`'s, or `nil` when it has `limitPerClient` open. The place is
    /// given back when the ticket goes: when the stream ends, or when its response is dropped unsent.
    func open(for client: String) -> Ticket? {
        let opened = state.withLock { state -> Bool in
            let open = state.byClient[client, default: 0]
            guard open < limitPerClient else { return false }
            state.byClient[client] = open + 1
            state.total += 1
            return true
        }
        return opened ? Ticket(streams: self, client: client) : nil
    }

    fileprivate func close(for client: String) {
        state.withLock { state in
            state.total -= 1
            let open = state.byClient[client, default: 1] - 1
            state.byClient[client] = open == 0 ? nil : open
        }
    }

    /// One open stream's place.
    final class Ticket: Sendable {
        private let streams: EventStreams
        private let client: String

        fileprivate init(streams: EventStreams, client: String) {
            self.streams = streams
            self.client = client
        }

        deinit {
            streams.close(for: client)
        }
    }
}

/// One event's text handed from the reader of a job's outputs to the connection's writer, and told back when
/// it is written: the reader takes the next update only then, so a client that reads slowly makes the queue
/// coalesce its updates (within the library's bounded window) instead of this server buffering them.
struct WrittenEvent: Sendable {
    var text: String
    var written: OpenOnce?
}

/// A one-way gate: `wait()` returns once `open()` was called, before or after, or once the waiting task is
/// cancelled.
final class OpenOnce: Sendable {
    private struct State {
        var isOpen = false
        var nextKey = 0
        var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
    }

    private let state = Mutex(State())

    func open() {
        let waiters = state.withLock { state in
            state.isOpen = true
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    func wait() async {
        let key = state.withLock { state in
            state.nextKey += 1
            return state.nextKey
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                // Cancellation is read under the lock: a cancel whose handler found no waiter has set it already.
                let resumeNow = state.withLock { state in
                    if state.isOpen || Task.isCancelled { return true }
                    state.waiters[key] = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            state.withLock { $0.waiters.removeValue(forKey: key) }?.resume()
        }
    }
}
