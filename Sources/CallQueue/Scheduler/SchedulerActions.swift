/// What a mutation of the scheduler's state asks to be done once the lock is dropped, in the order it asked.
///
/// The state never suspends, resumes a continuation, calls an observer or cancels a task: it appends an action
/// here, and ``Scheduler`` runs the list after the lock is released, in order. So a finish is reported before
/// the call it let in starts, and a start is reported before its caller resumes.
enum SchedulerAction {
    /// Tell the observer a task's status.
    case observe(TaskStatus)
    /// Stop a waiter's deadline timer: it left the line.
    case stopTimer(Task<Void, Never>)
    /// Resume a parked caller with a failure (cancelled, timed out, closed, lease lost).
    case fail(UnsafeContinuation<LifecycleState.Grant, any Error>, any Error)
    /// Resume a parked caller with its grant.
    case grant(UnsafeContinuation<LifecycleState.Grant, any Error>, LifecycleState.Grant)
    /// Wake a parked update reader: something it may read changed.
    case wakeReader(CheckedContinuation<UpdateSubscription.Step, Never>)
    /// Start the group's position flush after the push interval.
    case scheduleFlush(ConcurrencyGroupID)
    /// Cancel a running call (its cluster lease is lost, or the queue shuts down).
    case cancel(TaskControl)
    /// A batch was formed: start its task, which holds the slot.
    case launchBatch(BatchRunBase, LifecycleState.Held)
    /// A forming batch takes no more members: its wait for companions ends.
    case startBatch(BatchRunBase)
    /// Give a cluster ticket back, with the call's final status when it ran.
    case leaveCluster(any ClusterPermitSource, ClusterTicket, finished: TaskStatus?)
    /// Start the group's cluster sender: calls wait for a cluster ticket.
    case startClusterSender(ConcurrencyGroupID, any ClusterPermitSource)
    /// The queue has drained after a shutdown: wake whoever waits for it.
    case drained
}

/// The ordered actions of one or more mutations.
struct SchedulerActions {
    private(set) var list: [SchedulerAction] = []

    var isEmpty: Bool { list.isEmpty }

    mutating func append(_ action: SchedulerAction) {
        list.append(action)
    }
}
