/// A task's statuses as an `AsyncSequence`: the current one at once, then each change until it finishes;
/// the sequence ends after the finished status. Made by ``TaskLifecycle/updates(of:)`` and
/// ``CallQueue/updates(of:)``.
///
/// Pull-based: nothing is computed or buffered for a subscriber until it asks for the next element. A
/// reader gets the newest status when it reads (coalesced: it never sees an older one after a newer one,
/// see ``TaskStatus/version``). A change of the task's own state (start, progress, finish) wakes it at once;
/// a change of a waiting task's position wakes it at most once per
/// ``TaskLifecycle/Configuration/positionUpdateInterval``. A subscriber that never reads costs the queue
/// nothing when its line moves.
///
/// One consumer at a time, like `AsyncStream`: a second task that calls `next()` while another waits in it
/// gets `nil` at once (its iteration ends), and the waiting one goes on unharmed. Cancelling the consuming
/// task ends the sequence (`nil`); it does not cancel the task it follows. The subscription is freed when the task ends or the sequence
/// and its iterators are gone.
public struct TaskUpdates: AsyncSequence, Sendable {
    public typealias Element = TaskStatus
    public typealias Failure = Never

    let token: SubscriptionToken

    public func makeAsyncIterator() -> Iterator {
        Iterator(token: token)
    }

    public struct Iterator: AsyncIteratorProtocol {
        let token: SubscriptionToken

        public mutating func next() async -> TaskStatus? {
            await token.next()
        }

        public mutating func next(isolation actor: isolated (any Actor)?) async -> TaskStatus? {
            await token.next()
        }
    }
}

/// One subscriber's reading state. Every field is guarded by the lifecycle's lock.
final class UpdateSubscription: @unchecked Sendable {
    enum Step: Sendable {
        case status(TaskStatus)
        /// For a reader of partial outputs: a newer status, if any, and what the task emitted since its last
        /// read, if anything. A finished task's last step carries its final status.
        case outputs(TaskStatus?, OutputBuffer.Delta)
        case end
        /// Something changed: read again.
        case woken
        /// Another task is waiting on this subscription: this reader's iteration ends.
        case secondConsumer
    }

    let taskID: TaskID
    var lastVersion: UInt64?
    /// The group's ``GroupState/moved`` count from which a position change may be worth reading.
    var wakeAt: UInt64 = 0
    var lastPosition: (position: Int, queueSize: Int)?
    /// A flush came: a position change may be read now.
    var positionDue = false
    /// A reader waiting for a change. Checked: a second resume would stop the process rather than corrupt a task.
    var parked: CheckedContinuation<Step, Never>?
    var final: TaskStatus?
    var isDone = false
    /// A reader of partial outputs: the task's buffer, kept after the task finishes.
    var outputs: OutputBuffer?
    /// The index of the next chunk this reader reads.
    var nextChunk = 0
    /// The latest value's number this reader last read (0: none).
    var latestSeen: UInt64 = 0

    init(taskID: TaskID) {
        self.taskID = taskID
    }
}

/// Owns a subscription for the sequence and its iterators; unsubscribes when the last of them is gone.
final class SubscriptionToken: Sendable {
    let subscription: UpdateSubscription
    let scheduler: Scheduler

    init(subscription: UpdateSubscription, scheduler: Scheduler) {
        self.subscription = subscription
        self.scheduler = scheduler
    }

    func next() async -> TaskStatus? {
        while let step = await nextStep() {
            switch step {
            case .status(let status), .outputs(let status?, _): return status
            default: continue  // outputs alone: not for a status reader
            }
        }
        return nil
    }

    /// The next status or outputs; `nil` at the end.
    func nextStep() async -> UpdateSubscription.Step? {
        while true {
            let step = await withTaskCancellationHandler {
                await withCheckedContinuation { (continuation: CheckedContinuation<UpdateSubscription.Step, Never>) in
                    scheduler.read(subscription, parking: continuation)
                }
            } onCancel: {
                scheduler.unsubscribe(subscription)
            }
            switch step {
            case .status, .outputs: return step
            case .end, .secondConsumer: return nil
            case .woken: continue
            }
        }
    }

    deinit {
        scheduler.unsubscribe(subscription)
    }
}
