// Cluster-wide groups: the line here stays in front (admission, task ids, local order); each waiting call
// takes one cluster ticket, in local order, and starts when its permit source grants that ticket.

extension LifecycleState {
    /// A call joined a cluster-wide group's line: it waits for its cluster ticket; the group's sender starts
    /// if it is not running.
    mutating func needsClusterTicket(
        _ ticket: UInt64, in groupID: ConcurrencyGroupID, source: any ClusterPermitSource, effects: inout Effects
    ) {
        guard let group = groups[groupID] else { return }
        group.unsent.append(ticket)
        if !group.senderActive {
            group.senderActive = true
            effects.append(.startClusterSender(groupID, source))
        }
    }

    /// The next call of the group to ask a cluster ticket for, in arrival order, skipping calls that have
    /// left; `nil` stops the sender.
    mutating func nextClusterRequest(in groupID: ConcurrencyGroupID) -> (ticket: UInt64, taskID: TaskID?)? {
        guard let group = groups[groupID] else { return nil }
        while group.unsentHead < group.unsent.count {
            let ticket = group.unsent[group.unsentHead]
            group.unsentHead += 1
            if let entry = group.line.entry(ticket: ticket), entry.clusterTicket == nil {
                return (ticket, entry.taskID)
            }
        }
        group.unsent.removeAll(keepingCapacity: group.unsent.count < 1024)
        group.unsentHead = 0
        group.senderActive = false
        releaseIfIdle(groupID)
        return nil
    }

    /// The source took a place for the call: kept with it while it waits; given back at once when the call
    /// has left (and was not granted).
    mutating func clusterEnqueued(
        _ localTicket: UInt64, in groupID: ConcurrencyGroupID, as ticket: ClusterTicket, effects: inout Effects
    ) {
        guard let group = groups[groupID], let source = group.cluster else { return }
        if group.line.contains(ticket: localTicket) {
            group.line.update(ticket: localTicket) { $0.clusterTicket = ticket }
        } else if group.clusterHeld[localTicket] == nil {
            effects.append(.leaveCluster(source, ticket, finished: nil))
        }
    }

    /// The source granted the call's ticket: it leaves the line and starts with the permit's slot. A call
    /// that has left gives the slot back at once; a repeated grant changes nothing.
    mutating func clusterGranted(
        _ localTicket: UInt64, in groupID: ConcurrencyGroupID, ticket: ClusterTicket, permit: ClusterPermit,
        now: ContinuousClock.Instant, effects: inout Effects
    ) {
        guard let group = groups[groupID], let source = group.cluster else { return }
        if group.running[localTicket] != nil { return }
        guard let (waiter, _) = group.line.remove(ticket: localTicket) else {
            effects.append(.leaveCluster(source, ticket, finished: nil))
            return
        }
        group.clusterHeld[localTicket] = (ticket, waiter.continuation.taskID)
        grant(waiter, in: group, now: now, permit: permit, effects: &effects)
    }

    /// The call's place in the cluster-wide line changed; its readers hear of it with the group's next
    /// position flush.
    mutating func clusterPositionChanged(
        _ localTicket: UInt64, in groupID: ConcurrencyGroupID, position: Int, queueSize: Int,
        runTimeEstimate: Duration?, effects: inout Effects
    ) {
        guard let group = groups[groupID], group.line.contains(ticket: localTicket) else { return }
        if let runTimeEstimate { group.clusterRunTime = runTimeEstimate }
        group.clusterQueueSize = queueSize
        if group.lastPlaced.map({ $0.ticket <= localTicket }) ?? true {
            group.lastPlaced = (localTicket, position)
        }
        group.line.update(ticket: localTicket) { $0.clusterPlace = (position, queueSize) }
        moved(groupID, effects: &effects)
    }

    /// The call's ticket is lost: a waiting call fails with `error`; a running one is cancelled and fails
    /// with it. Returns nothing to do when the call has finished.
    mutating func clusterLost(
        _ localTicket: UInt64, in groupID: ConcurrencyGroupID, error: CallQueueError, effects: inout Effects
    ) {
        guard let group = groups[groupID] else { return }
        if group.line.contains(ticket: localTicket) {
            removeWaiting(ticket: localTicket, group: groupID, error: error, effects: &effects)
        } else if let held = group.clusterHeld[localTicket], let taskID = held.taskID, let task = tasks[taskID] {
            task.control.markLost(error)
            effects.append(.cancel(task.control))
        }
    }

    /// The task id of a call of the group, waiting or running.
    func clusterTaskID(_ localTicket: UInt64, in groupID: ConcurrencyGroupID) -> TaskID? {
        guard let group = groups[groupID] else { return nil }
        return group.line.entry(ticket: localTicket)?.taskID ?? group.clusterHeld[localTicket]?.taskID
    }

    /// A call left a cluster-wide group's line without a grant: its cluster ticket, if it has one, is given
    /// back.
    func leaveClusterTicket(
        of entry: GroupState.LineEntry, in groupID: ConcurrencyGroupID, effects: inout Effects
    ) {
        guard let ticket = entry.clusterTicket, let source = groups[groupID]?.cluster else { return }
        effects.append(.leaveCluster(source, ticket, finished: nil))
    }

    /// The permit of a running task of a cluster-wide group.
    func clusterPermit(of id: TaskID) -> ClusterPermit? {
        guard case .running(let running) = tasks[id]?.phase else { return nil }
        return running.permit
    }
}
