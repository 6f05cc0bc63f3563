import Synchronization

/// Requests another party can make of a running task, AUTOMATIC1111's job flags per task id. The body reads
/// them through ``CallContext``; they reset when a call made with ``CallQueue/runCall(id:isolation:_:)`` returns.
public struct ControlFlags: OptionSet, Sendable, Hashable, Codable {
    public var rawValue: Int

    public init(rawValue: Int) {
        self.rawValue = rawValue
    }

    /// Stop now: the task is also cancelled.
    public static let interrupt = ControlFlags(rawValue: 1 << 0)
    /// Skip the current item (image, batch) and go on with the next.
    public static let skip = ControlFlags(rawValue: 1 << 1)
    /// Finish the current item, then stop.
    public static let stopAfterCurrent = ControlFlags(rawValue: 1 << 2)
}

/// The handle through which a task is cancelled by id, and its flags.
///
/// Cancelling by id cancels the call, never the task that awaits it: while the call waits, the lifecycle
/// takes it out of its line; while it runs, ``cancel()`` cancels the task its body runs in (the body's own
/// task for a scoped call, the queue's task for a submitted one). The canceller is read under a lock and
/// called after it is dropped, so the body's cancellation handlers never run under a library lock; flags
/// are an atomic word, readable from a cancellation handler.
final class TaskControl: Sendable {
    private let flagBits = Atomic<Int>(0)
    /// Everything but the flags, behind one lock: a task's control is made for every tracked call.
    private struct State {
        var cancel: (@Sendable () -> Void)?
        var requested = false
        var batch: BatchRunBase?
        var lost: CallQueueError?
    }

    private let state = LockedState(State())

    /// Why the call's cluster lease was lost, once it was: the call is cancelled and fails with this error.
    var lost: CallQueueError? { state.withLock { $0.lost } }

    func markLost(_ error: CallQueueError) {
        state.withLock { $0.lost = error }
    }

    /// The batch this task is a member of, once it is in one.
    var batch: BatchRunBase? {
        get { state.withLock { $0.batch } }
        set { state.withLock { $0.batch = newValue } }
    }

    /// Sets what cancels the running call. Returns `true` when a cancel came first: the caller cancels.
    func setCanceller(_ cancel: @escaping @Sendable () -> Void) -> Bool {
        state.withLock { state in
            state.cancel = cancel
            return state.requested
        }
    }

    func clearCanceller() {
        state.withLock { $0.cancel = nil }
    }

    /// Records a cancel request and cancels the running call, if one is set, outside the lock.
    func cancel() {
        insert(.interrupt)
        let cancel = state.withLock { state -> (@Sendable () -> Void)? in
            state.requested = true
            return state.cancel
        }
        cancel?()
    }

    /// Whether the task was cancelled by id.
    var isCancelRequested: Bool { state.withLock { $0.requested } }

    func insert(_ flags: ControlFlags) {
        flagBits.bitwiseOr(flags.rawValue, ordering: .acquiringAndReleasing)
    }

    func resetFlags() {
        flagBits.store(0, ordering: .releasing)
    }

    var flags: ControlFlags { ControlFlags(rawValue: flagBits.load(ordering: .acquiring)) }
}
