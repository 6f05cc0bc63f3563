// The queue's side of a cluster-wide group: one sender per group asks the permit source for tickets in local
// arrival order; the source's reports come back through ``ClusterTicketEvents``.

extension TaskLifecycle {
    /// Starts the group's sender: it asks the source for a ticket for each waiting call, one at a time, in
    /// arrival order, until none is left.
    func startClusterSender(for group: ConcurrencyGroupID, source: any ClusterPermitSource) {
        Task { [self] in
            while let next = state.withLock({ $0.nextClusterRequest(in: group) }) {
                let events = ClusterTicketEvents(lifecycle: self, group: group, localTicket: next.ticket)
                var effects = LifecycleState.Effects()
                do {
                    let ticket = try await source.enqueue(
                        ClusterRequest(group: group, taskID: next.taskID, events: events))
                    state.withLock { $0.clusterEnqueued(next.ticket, in: group, as: ticket, effects: &effects) }
                } catch {
                    state.withLock {
                        _ = $0.removeWaiting(ticket: next.ticket, group: group, error: error, effects: &effects)
                    }
                }
                run(effects)
            }
        }
    }

    func clusterGranted(_ events: ClusterTicketEvents, ticket: ClusterTicket, permit: ClusterPermit) {
        let now = clock.now
        var effects = LifecycleState.Effects()
        state.withLock {
            $0.clusterGranted(
                events.localTicket, in: events.group, ticket: ticket, permit: permit, now: now, effects: &effects)
        }
        run(effects)
    }

    func clusterPositionChanged(
        _ events: ClusterTicketEvents, position: Int, queueSize: Int, runTimeEstimate: Duration?
    ) {
        var effects = LifecycleState.Effects()
        state.withLock {
            $0.clusterPositionChanged(
                events.localTicket, in: events.group, position: position, queueSize: queueSize,
                runTimeEstimate: runTimeEstimate, effects: &effects)
        }
        run(effects)
    }

    func clusterLost(_ events: ClusterTicketEvents, error: CallQueueError) {
        var effects = LifecycleState.Effects()
        state.withLock { $0.clusterLost(events.localTicket, in: events.group, error: error, effects: &effects) }
        run(effects)
    }

    func clusterCancelRequested(_ events: ClusterTicketEvents) {
        guard let id = state.withLock({ $0.clusterTaskID(events.localTicket, in: events.group) }) else { return }
        _ = try? cancel(id)
    }

    /// The permit of a running task of a cluster-wide group; `nil` for any other task.
    func clusterPermit(of id: TaskID) -> ClusterPermit? {
        state.withLock { $0.clusterPermit(of: id) }
    }
}
