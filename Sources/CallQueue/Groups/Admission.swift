/// Whether one more call may join a group: a pure function of the configuration and the current counts.
///
/// A call that can start at once is always admitted (a queue size of 0 still admits while a slot is free);
/// a call that would wait counts against its group's ``ConcurrencyGroupConfiguration/maxQueueSize``, the
/// queue's overall ``CallQueue/Configuration/maxQueueSize`` and ``CallQueue/Configuration/maxEstimatedWait``.
enum Admission {
    struct Counts {
        var group: ConcurrencyGroupID
        var limit: Int?
        /// Calls waiting in the group: for a slot, the budget or the process-wide limit.
        var waitingInGroup: Int
        var groupMaxQueueSize: Int?
        var waitingInAll: Int
        var overallMaxQueueSize: Int?
        /// Whether this call would wait rather than start at once.
        var wouldWait: Bool
        var estimatedWait: Duration
        var maxEstimatedWait: Duration?
    }

    static func check(_ counts: Counts, taskID: TaskID?) throws {
        guard counts.wouldWait else { return }
        let group = counts.group
        if let maxSize = counts.groupMaxQueueSize, counts.waitingInGroup + 1 > maxSize {
            let limit = counts.limit.map(String.init) ?? "unlimited"
            throw CallQueueError(
                .queueFull,
                "group '\(group)' is full: \(counts.waitingInGroup) calls waiting, at most \(maxSize), limit \(limit); "
                    + "retry later",
                group: group,
                taskID: taskID,
                queueSize: counts.waitingInGroup,
                maxQueueSize: maxSize
            )
        }
        if let maxSize = counts.overallMaxQueueSize, counts.waitingInAll + 1 > maxSize {
            throw CallQueueError(
                .queueFull,
                "the call queue is full: \(counts.waitingInAll) calls waiting in all groups, at most \(maxSize); "
                    + "retry later",
                group: group,
                taskID: taskID,
                queueSize: counts.waitingInAll,
                maxQueueSize: maxSize
            )
        }
        if let maxWait = counts.maxEstimatedWait, counts.estimatedWait > maxWait {
            throw CallQueueError(
                .waitTooLong,
                "group '\(group)': the estimated wait \(PerfStats.timeText(counts.estimatedWait)) exceeds "
                    + "\(PerfStats.timeText(maxWait)); retry later",
                group: group,
                taskID: taskID
            )
        }
    }
}
