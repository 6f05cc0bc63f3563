import CallQueueTestSupport

@testable import CallQueue

/// A cluster-wide line kept in memory and shared by several ``CallQueue``s (replicas) in one test: strict FIFO
/// over N slots, positions reported to every waiter on every change, grants and reports made outside its lock and
/// delivered in the order they were made (a later report never arrives before an earlier one).
/// It also lets a test hold back enqueues, lose a ticket, or ask for a cancel as another replica would.
final class InMemoryCluster: Sendable {
    struct Ticket: Sendable {
        var ticket: ClusterTicket
        var events: ClusterTicketEvents
        var taskID: TaskID?
        var replica: String
    }

    private struct State {
        var slots: Int
        var nextID: Int64 = 0
        var nextFence: Int64 = 0
        var waiting: [Ticket] = []
        var holders: [Int64: (ticket: Ticket, slot: Int)] = [:]
        var grantOrder: [Int64] = []
        var enqueueOrder: [Int64] = []
        var leaves = 0
        var finished: [TaskID: TaskStatus] = [:]
        var mostHolders = 0
        /// Reports made and not yet delivered, in the order they were made.
        var undelivered: [Report] = []
        /// Whether a caller is delivering them; others leave theirs to it.
        var delivering = false
    }

    private let state: LockedState<State>
    let failEnqueues = LockedState<CallQueueError?>(nil)
    /// While set, enqueues wait for it: a replica's calls wait for their tickets.
    let holdEnqueues = LockedState<Gate?>(nil)
    /// The run time it reports with positions, as a cluster-wide figure would be.
    let runTime = LockedState<Duration?>(nil)

    init(slots: Int) {
        state = LockedState(State(slots: slots))
    }

    /// A replica's view of the cluster: the source a ``CallQueue`` is configured with.
    func source(replica: String) -> any ClusterPermitSource {
        Replica(cluster: self, name: replica)
    }

    struct Replica: ClusterPermitSource {
        let cluster: InMemoryCluster
        let name: String

        func enqueue(_ request: ClusterRequest) async throws -> ClusterTicket {
            if let gate = cluster.holdEnqueues.withLock({ $0 }) { await gate.wait() }
            return try cluster.enqueue(request, replica: name)
        }

        func leave(_ ticket: ClusterTicket, finished: TaskStatus?) {
            cluster.leave(ticket, finished: finished)
        }
    }

    private typealias Report = @Sendable () -> Void

    func enqueue(_ request: ClusterRequest, replica: String) throws -> ClusterTicket {
        if let error = failEnqueues.withLock({ $0 }) { throw error }
        let ticket = state.withLock { state -> ClusterTicket in
            state.nextID += 1
            let ticket = ClusterTicket(group: request.group, id: state.nextID)
            state.enqueueOrder.append(ticket.id)
            state.waiting.append(
                Ticket(ticket: ticket, events: request.events, taskID: request.taskID, replica: replica))
            state.undelivered += advance(&state)
            return ticket
        }
        deliver()
        return ticket
    }

    func leave(_ ticket: ClusterTicket, finished: TaskStatus?) {
        state.withLock { state in
            state.leaves += 1
            if let finished { state.finished[finished.id] = finished }
            if state.holders.removeValue(forKey: ticket.id) == nil {
                state.waiting.removeAll { $0.ticket.id == ticket.id }
            }
            state.undelivered += advance(&state)
        }
        deliver()
    }

    /// Delivers the reports made so far, outside the lock and in order: one caller delivers at a time, and a
    /// caller that finds another delivering leaves its reports to it (also a report that leads back here).
    private func deliver() {
        let isFirst = state.withLock { state -> Bool in
            defer { state.delivering = true }
            return !state.delivering
        }
        guard isFirst else { return }
        while let report = state.withLock({ state -> Report? in
            if state.undelivered.isEmpty {
                state.delivering = false
                return nil
            }
            return state.undelivered.removeFirst()
        }) {
            report()
        }
    }

    /// Grants free slots to the oldest waiters, then tells every waiter its place.
    private func advance(_ state: inout State) -> [Report] {
        let runTime = self.runTime.withLock { $0 }
        var reports: [Report] = []
        while state.holders.count < state.slots, !state.waiting.isEmpty {
            let next = state.waiting.removeFirst()
            let used = Set(state.holders.values.map(\.slot))
            let slot = (0..<state.slots).first { !used.contains($0) }!
            state.nextFence += 1
            state.holders[next.ticket.id] = (next, slot)
            state.mostHolders = max(state.mostHolders, state.holders.count)
            state.grantOrder.append(next.ticket.id)
            let permit = ClusterPermit(slot: slot, fence: state.nextFence)
            reports.append { next.events.granted(next.ticket, permit: permit) }
        }
        let size = state.waiting.count
        for (position, waiter) in state.waiting.enumerated() {
            reports.append {
                waiter.events.positionChanged(position: position, queueSize: size, runTimeEstimate: runTime)
            }
        }
        return reports
    }

    /// Loses every ticket of a replica, as a reaped session would; their calls hear `leaseLost`.
    func loseReplica(_ replica: String) {
        state.withLock { state in
            let lostWaiting = state.waiting.filter { $0.replica == replica }
            state.waiting.removeAll { $0.replica == replica }
            let lostHolders = state.holders.values.filter { $0.ticket.replica == replica }.map(\.ticket)
            for holder in lostHolders { state.holders[holder.ticket.id] = nil }
            for ticket in lostWaiting + lostHolders {
                state.undelivered.append { ticket.events.lost(CallQueueError(.leaseLost, "lease of \(replica) lost")) }
            }
            state.undelivered += advance(&state)
        }
        deliver()
    }

    /// Asks the replica holding the task's ticket to cancel it, as a cancel from another replica would.
    func requestCancel(of id: TaskID) -> Bool {
        let events = state.withLock { state -> ClusterTicketEvents? in
            (state.waiting.first { $0.taskID == id } ?? state.holders.values.first { $0.ticket.taskID == id }?.ticket)?
                .events
        }
        events?.cancelRequested()
        return events != nil
    }

    var holders: Int { state.withLock { $0.holders.count } }
    var waiting: Int { state.withLock { $0.waiting.count } }
    var mostHolders: Int { state.withLock { $0.mostHolders } }
    var grantOrder: [Int64] { state.withLock { $0.grantOrder } }
    var enqueueOrder: [Int64] { state.withLock { $0.enqueueOrder } }
    func finished(_ id: TaskID) -> TaskStatus? { state.withLock { $0.finished[id] } }
    func taskID(ofTicket id: Int64) -> TaskID? {
        state.withLock { state in
            (state.waiting.first { $0.ticket.id == id } ?? state.holders[id]?.ticket)?.taskID
        }
    }
}
