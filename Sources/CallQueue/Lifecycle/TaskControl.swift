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
/// Cancelling by id cancels the Swift task that made the call: while it waits, its acquire throws
/// `CancellationError` at once; while it runs, the body sees `Task.isCancelled` and its slot stays held
/// until it returns. The task is only referenced between ``attach()`` and ``detach()``, both run by that
/// task itself, so it is alive whenever it is cancelled from here.
final class TaskControl: Sendable {
    private struct State {
        var task: UnsafeCurrentTask?
        var flags: ControlFlags = []
        var cancelRequested = false
    }

    private let state = LockedState(State())

    /// Registers the current task. A cancel that arrived before this is honoured now.
    func attach() {
        withUnsafeCurrentTask { task in
            let cancelNow = state.withLock { state -> Bool in
                state.task = task
                return state.cancelRequested
            }
            if cancelNow { task?.cancel() }
        }
    }

    /// Forgets the task; after this, cancel requests have no effect.
    func detach() {
        state.withLock { $0.task = nil }
    }

    /// Cancels the attached task, or the task about to attach.
    func cancel() {
        state.withLock { state in
            state.cancelRequested = true
            state.flags.insert(.interrupt)
            // Cancelling under the lock keeps the task alive for the call: detach() waits for this lock.
            state.task?.cancel()
        }
    }

    func insert(_ flags: ControlFlags) {
        state.withLock { $0.flags.formUnion(flags) }
    }

    func resetFlags() {
        state.withLock { $0.flags = [] }
    }

    var flags: ControlFlags { state.withLock { $0.flags } }
}
