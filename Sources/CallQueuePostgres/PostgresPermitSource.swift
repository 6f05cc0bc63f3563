#if Postgres
    import CallQueue
    import Foundation
    import Logging
    import NIOConcurrencyHelpers
    import PostgresNIO
    import ServiceLifecycle

    /// Cluster-wide groups on PostgreSQL: one strict-FIFO line per group shared by every replica that uses the
    /// same database and schema, never more holders than the group's slots, each grant with its slot and a
    /// fencing number.
    ///
    /// Run it as a `Service` (in the `ServiceGroup` beside the `PostgresClient` it is given), and name it as the
    /// permit source of the cluster-wide groups of your ``CallQueue``:
    ///
    /// ```swift
    /// let source = PostgresPermitSource(
    ///     client: client, listenerConfiguration: listener,
    ///     configuration: .init(replica: "web-1", groups: ["gpu": 4]), logger: logger)
    /// let queue = try CallQueue(configuration: .init(
    ///     groups: ["gpu": .init(limit: 4, maxQueueSize: 500)], permitSources: ["gpu": source]))
    /// ```
    ///
    /// What it owns while it runs: the schema's migration (versioned, under an advisory lock), the groups'
    /// slots from ``Configuration/groups``, this replica's session and its lease (renewed every
    /// ``Configuration/heartbeat``), a dedicated listener connection for grants and line changes (reconnected
    /// with backoff, listening again and polling at once), the reaper that gives the slots of expired replicas
    /// to the next in line, retried releases, and the release of tickets whose enqueue's answer was lost. Until
    /// its session is open, ``enqueue(_:)`` waits up to ``Configuration/startTimeout``, then fails with
    /// ``CallQueueError/Code/unavailable``. A graceful shutdown lets the running calls finish within
    /// ``Configuration/shutdownGracePeriod``, then ends the session so the slots go on at once (``run()``).
    ///
    /// From any replica: ``status(of:)``, ``updates(of:)`` and ``cancel(_:)`` answer for a task wherever it runs.
    ///
    /// What a lease guarantees: the database never holds more than `slots` grants of a group. When this replica
    /// cannot renew its lease in time (``Configuration/lease`` minus ``Configuration/safetyMargin`` after its
    /// last renewal was sent), its running calls are cancelled and fail with ``CallQueueError/Code/leaseLost``
    /// before the database can give their slots away (``LeaseLossPolicy``). A process paused longer than the
    /// margin can still act once after it resumes; a resource that checks ``ClusterPermit/fence`` refuses it.
    public final class PostgresPermitSource: ClusterPermitSource, Service {
        /// What a replica does with its running calls when it cannot renew its lease in time.
        public enum LeaseLossPolicy: Sendable, Hashable {
            /// Cancel them; they fail with ``CallQueueError/Code/leaseLost``. Safe with any replication.
            case cancelRunning
            /// Let them run on. Only correct when a failover cannot lose the grant (synchronous replication)
            /// and the outage is shorter than ``Configuration/restartGrace``; otherwise a slot may have two
            /// holders.
            case rideThrough
        }

        /// How the source behaves. Every duration is checked when the source starts.
        public struct Configuration: Sendable {
            /// This replica's name, for the database's session table and logs.
            public var replica: String
            /// The cluster-wide groups and their slots (the number of GPU workers). Written to the database when
            /// the source starts; a lowered count is honoured as holders leave.
            public var groups: [ConcurrencyGroupID: Int]
            /// The PostgreSQL schema holding the tables and functions; replicas that share a line share it.
            public var schema = "call_queue"
            /// How long the database keeps this replica's tickets without a heartbeat.
            public var lease: Duration = .seconds(15)
            /// How often the lease is renewed (and grants polled, in case a notification was lost).
            public var heartbeat: Duration = .seconds(3)
            /// How often expired replicas' tickets are reaped.
            public var reaperInterval: Duration = .milliseconds(2500)
            /// How long before the database could reap this replica its running calls are stopped.
            public var safetyMargin: Duration = .seconds(2)
            /// The extra lease every session gets when the database server restarts or fails over.
            public var restartGrace: Duration = .seconds(30)
            /// What running calls do when the lease cannot be renewed in time.
            public var onLeaseLoss: LeaseLossPolicy = .cancelRunning
            /// The least time between two refreshes of a group's positions after its line moved.
            public var positionRefreshInterval: Duration = .milliseconds(250)
            /// How long a call waits for the source to open its session before failing with
            /// ``CallQueueError/Code/unavailable``.
            public var startTimeout: Duration = .seconds(10)
            /// How long the source waits for the database to answer an enqueue or a release before it gives up
            /// on the answer (an enqueue fails with ``CallQueueError/Code/unavailable``; a release is sent again).
            /// A ticket whose answer was given up on is found and released by the next heartbeat. The listener
            /// connection gets it as its `statement_timeout`. Lock waits inside the schema's functions are bounded
            /// by the schema itself (5 s), whatever the connections' settings.
            public var statementTimeout: Duration = .seconds(10)
            /// On a graceful shutdown (``run()`` under a `ServiceGroup`): how long this replica's running calls
            /// may go on before they are stopped with ``CallQueueError/Code/closed`` and the session ends. Its
            /// waiting calls leave the line at once with ``CallQueueError/Code/closed``.
            public var shutdownGracePeriod: Duration = .seconds(10)
            /// How long a finished task's final status stays readable from any replica (``status(of:)``,
            /// ``updates(of:)``).
            public var finishedStatusRetention: Duration = .seconds(600)

            public init(
                replica: String,
                groups: [ConcurrencyGroupID: Int],
                schema: String = "call_queue",
                lease: Duration = .seconds(15),
                heartbeat: Duration = .seconds(3),
                reaperInterval: Duration = .milliseconds(2500),
                safetyMargin: Duration = .seconds(2),
                restartGrace: Duration = .seconds(30),
                onLeaseLoss: LeaseLossPolicy = .cancelRunning,
                positionRefreshInterval: Duration = .milliseconds(250),
                startTimeout: Duration = .seconds(10),
                statementTimeout: Duration = .seconds(10),
                shutdownGracePeriod: Duration = .seconds(10),
                finishedStatusRetention: Duration = .seconds(600)
            ) {
                self.replica = replica
                self.groups = groups
                self.schema = schema
                self.lease = lease
                self.heartbeat = heartbeat
                self.reaperInterval = reaperInterval
                self.safetyMargin = safetyMargin
                self.restartGrace = restartGrace
                self.onLeaseLoss = onLeaseLoss
                self.positionRefreshInterval = positionRefreshInterval
                self.startTimeout = startTimeout
                self.statementTimeout = statementTimeout
                self.shutdownGracePeriod = shutdownGracePeriod
                self.finishedStatusRetention = finishedStatusRetention
            }

            func validated() throws -> Configuration {
                _ = try Schema.validated(schema)
                func fail(_ message: String) -> CallQueueError { CallQueueError(.invalidArgument, message) }
                for (group, slots) in groups where !(1...4096).contains(slots) {
                    throw CallQueueError(
                        .invalidArgument, "group '\(group)' has \(slots) slots; a cluster-wide group has 1...4096",
                        group: group)
                }
                guard lease >= .milliseconds(500) else { throw fail("lease \(lease) is shorter than 0.5 s") }
                guard safetyMargin > .zero, safetyMargin < lease else {
                    throw fail("safetyMargin \(safetyMargin) must be positive and shorter than the lease \(lease)")
                }
                guard heartbeat > .zero, heartbeat < lease - safetyMargin else {
                    throw fail("heartbeat \(heartbeat) must be positive and shorter than lease - safetyMargin")
                }
                for (name, value) in [
                    ("reaperInterval", reaperInterval), ("restartGrace", restartGrace),
                    ("positionRefreshInterval", positionRefreshInterval), ("startTimeout", startTimeout),
                    ("shutdownGracePeriod", shutdownGracePeriod), ("finishedStatusRetention", finishedStatusRetention),
                ] where value < .zero {
                    throw fail("\(name) \(value) is negative")
                }
                guard statementTimeout >= .milliseconds(100) else {
                    throw fail("statementTimeout \(statementTimeout) is shorter than 0.1 s")
                }
                return self
            }
        }

        /// The settings the source runs with.
        public let configuration: Configuration
        let client: PostgresClient
        let listenerConfiguration: PostgresConnection.Configuration
        let logger: Logger
        let schema: String
        let state = NIOLockedValueBox(State())
        let wakeups: Wakeups

        /// Makes a source; nothing touches the database until ``run()``.
        ///
        /// - Parameters:
        ///   - client: The pool for enqueues, releases and the reaper; run it in the same `ServiceGroup`.
        ///   - listenerConfiguration: How to open the dedicated connection for notifications and heartbeats
        ///     (LISTEN needs a connection of its own; use the pool's settings). The source adds its own
        ///     `statement_timeout`, `lock_timeout` and `idle_in_transaction_session_timeout` where these settings
        ///     have none.
        ///   - configuration: Groups, schema, lease and the rest.
        ///   - logger: Where the source logs reconnects, lease losses and errors.
        public init(
            client: PostgresClient,
            listenerConfiguration: PostgresConnection.Configuration,
            configuration: Configuration,
            logger: Logger
        ) {
            self.client = client
            self.listenerConfiguration = Self.bounded(
                listenerConfiguration, statementTimeout: configuration.statementTimeout)
            self.configuration = configuration
            self.logger = logger
            schema = configuration.schema
            wakeups = Wakeups()
        }

        // MARK: ClusterPermitSource

        public func enqueue(_ request: ClusterRequest) async throws -> ClusterTicket {
            guard configuration.groups[request.group] != nil else {
                throw CallQueueError(
                    .unknownGroup,
                    "group '\(request.group)' is not a cluster-wide group of this source; add it to "
                        + "PostgresPermitSource.Configuration.groups",
                    group: request.group)
            }
            // A ticket taken on a session that was lost before this replica recorded it is gone with that
            // session: the call takes a new place on the current one. Three attempts, then the call fails.
            for attempt in 1...3 {
                let session = try await openSession()
                let number = state.withLockedValue { state -> Int64 in
                    state.requests += 1
                    state.requestsInFlight.insert(state.requests)
                    return state.requests
                }
                let row: EnqueueRow
                do {
                    row = try await enqueueQuery(request, session: session, number: number)
                } catch {
                    // Its ticket, if the database took it, is an orphan now: the next heartbeat releases it.
                    state.withLockedValue { _ = $0.requestsInFlight.remove(number) }
                    let failure = failure(
                        of: error, doing: "enqueue in group '\(request.group)'", group: request.group, session: session)
                    // A lost session: a place on the new one. A connection that broke (the pool can hand out one
                    // the server has just cut): another connection; a ticket the first attempt left is an orphan.
                    if attempt < 3, failure.code == .leaseLost || Self.isConnectionFailure(error) {
                        try await Task.sleep(for: .milliseconds(20 * attempt))
                        continue
                    }
                    throw failure
                }
                let ticket = ClusterTicket(group: request.group, id: row.ticket)
                if let hook = state.withLockedValue({ $0.beforeRegistering }) { await hook() }
                guard
                    let (grant, cancelled) = register(
                        ticket, events: request.events, session: session, number: number, slot: row.slot,
                        fence: row.fence)
                else {
                    // Its session was lost, or the source is shutting down (the next attempt fails with `closed`).
                    wakeups.leaves.yield()
                    continue
                }
                if let grant {
                    request.events.granted(ticket, permit: grant)
                } else {
                    request.events.positionChanged(
                        position: Int(row.ahead), queueSize: Int(row.waiting),
                        runTimeEstimate: row.holdMs.map { .milliseconds($0) })
                }
                if cancelled { request.events.cancelRequested() }
                return ticket
            }
            throw CallQueueError(
                .leaseLost,
                "replica '\(configuration.replica)' lost its database session three times while enqueuing in group "
                    + "'\(request.group)'; is its lease too short for the database's latency?", group: request.group)
        }

        /// Whether the connection failed, rather than the database refusing the statement or the answer being
        /// given up on.
        static func isConnectionFailure(_ error: any Error) -> Bool {
            guard let error = error as? PSQLError else { return false }
            return error.serverInfo?[.sqlState] == nil || error.serverInfo?[.sqlState]?.hasPrefix("57P") == true
        }

        struct EnqueueRow: Sendable {
            var ticket: Int64
            var slot: Int32?
            var fence: Int64?
            var ahead: Int64
            var waiting: Int64
            var holdMs: Double?
        }

        private func enqueueQuery(_ request: ClusterRequest, session: UUID, number: Int64) async throws -> EnqueueRow {
            let group = request.group
            let query: PostgresQuery = """
                SELECT e.ticket, e.slot, e.fence, e.ahead, e.waiting,
                  (SELECT hold_ms FROM \(unescaped: schema).cq_group WHERE name = \(group.name))
                FROM \(unescaped: schema).cq_enqueue(\
                \(group.name), \(session), \(request.taskID?.rawValue), \
                make_interval(secs => \(configuration.restartGrace.seconds)), \(number)) e
                """
            let row = try await within(configuration.statementTimeout) { [client, logger] in
                let rows = try await client.query(query, logger: logger)
                for try await (ticket, slot, fence, ahead, waiting, hold) in rows.decode(
                    (Int64, Int32?, Int64?, Int64, Int64, Double?).self)
                {
                    return EnqueueRow(
                        ticket: ticket, slot: slot, fence: fence, ahead: ahead, waiting: waiting, holdMs: hold)
                }
                throw CallQueueError(.unavailable, "cq_enqueue returned no row", group: group)
            }
            if state.withLockedValue({ state in
                defer { state.losesNextEnqueueReply = false }
                return state.losesNextEnqueueReply
            }) {
                throw CallQueueError(.unavailable, "the enqueue's reply was lost (a test's fault)", group: group)
            }
            return row
        }

        public func leave(_ ticket: ClusterTicket, finished: TaskStatus?) {
            let done = finished.flatMap { try? String(decoding: JSONEncoder().encode($0), as: UTF8.self) }
            let timed = finished?.state.finished.map { $0.started && $0.outcome != .cancelled } ?? false
            state.withLockedValue { state in
                // A ticket this replica no longer records was dropped with a lost session, or left at shutdown.
                guard let session = state.entries.removeValue(forKey: ticket.id)?.session else { return }
                state.scheduleLeave(PendingLeave(ticket: ticket, session: session, done: done, timed: timed))
            }
            wakeups.leaves.yield()
        }

        // MARK: Service

        /// Migrates the schema, declares the groups, opens the session and keeps it: listener, heartbeat,
        /// lease watch, reaper, releases and position refreshes.
        ///
        /// On a graceful shutdown (in a `ServiceGroup`), this replica's waiting calls leave the line at once with
        /// ``CallQueueError/Code/closed``, its running calls get ``Configuration/shutdownGracePeriod`` to finish
        /// (then they are stopped with the same error), and the session ends in the database, so other replicas'
        /// waiters get its slots at once rather than after its lease. When cancelled, it does the same without
        /// the grace period. Either way it returns after ending the session; list the `PostgresClient` before
        /// the source in the `ServiceGroup`, so the pool still runs then.
        ///
        /// - Throws: ``CallQueueError`` with ``CallQueueError/Code/invalidArgument`` for a bad configuration,
        ///   ``CallQueueError/Code/incompatibleSchema`` when the schema is newer than this library. An unreachable
        ///   database is retried with backoff; calls waiting meanwhile fail after ``Configuration/startTimeout``.
        public func run() async throws {
            do {
                _ = try configuration.validated()
                try await retrying("prepare the schema") { try await self.prepare() }
            } catch {
                let failure = error as? CallQueueError ?? CallQueueError(.unavailable, "\(error)")
                state.withLockedValue { $0.startFailure = failure }
                throw error
            }
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await self.listenerLoop() }
                group.addTask { await self.leaseWatch() }
                group.addTask { await self.reaperLoop() }
                group.addTask { await self.leaveLoop() }
                group.addTask { await self.positionLoop() }
                group.addTask { await self.watchLoop() }
                group.addTask {
                    // Returns on a graceful shutdown, after the calls have left; throws when cancelled.
                    guard (try? await gracefulShutdown()) != nil else { return }
                    await self.drain()
                }
                await group.next()  // the loops run until cancelled; the drain ends on a graceful shutdown
                group.cancelAll()
            }
            // Not in this task: its cancellation would refuse the queries that hand the slots on.
            await Task { await self.endSession() }.value
        }

        // MARK: From any replica

        /// The status of a task in a cluster-wide group, whichever replica runs it: waiting (position and queue
        /// size in the cluster-wide line, an ETA from the group's cluster-wide hold time), running (slot and
        /// elapsed time; progress lives on its replica), or finished within
        /// ``Configuration/finishedStatusRetention``. `nil` when the database has no record of it (never seen,
        /// waiting for its ticket, or older).
        public func status(of id: TaskID) async throws -> TaskStatus? {
            do {
                let rows = try await client.query(
                    """
                    SELECT t.grp, t.slot, extract(epoch FROM now() - t.granted_at)::float8,
                      (SELECT count(*) FROM \(unescaped: schema).cq_ticket w
                        WHERE w.grp = t.grp AND w.slot IS NULL AND w.id < t.id),
                      g.waiting::int8, g.hold_ms, g.slots
                    FROM \(unescaped: schema).cq_ticket t JOIN \(unescaped: schema).cq_group g ON g.name = t.grp
                    WHERE t.task = \(id.rawValue) ORDER BY t.id DESC LIMIT 1
                    """, logger: logger)
                for try await (group, slot, elapsed, ahead, waiting, holdMs, slots) in rows.decode(
                    (String, Int32?, Double?, Int64, Int64, Double?, Int32).self)
                {
                    return Self.liveStatus(
                        id: id, group: ConcurrencyGroupID(group), slot: slot.map(Int.init), elapsed: elapsed ?? 0,
                        ahead: Int(ahead), waiting: Int(waiting), holdSeconds: holdMs.map { $0 / 1000 },
                        slots: Int(slots))
                }
                let done = try await client.query(
                    """
                    SELECT status FROM \(unescaped: schema).cq_done WHERE task = \(id.rawValue)
                    AND finished_at >= now() - make_interval(secs => \(configuration.finishedStatusRetention.seconds))
                    """, logger: logger)
                for try await json in done.decode(String.self) {
                    return try JSONDecoder().decode(TaskStatus.self, from: Data(json.utf8))
                }
                return nil
            } catch let error as CallQueueError {
                throw error
            } catch {
                throw failure(of: error, doing: "read the status of '\(id)'")
            }
        }

        /// Cancels a task of a cluster-wide group by id, whichever replica runs it: that replica hears it and
        /// cancels the call as ``CallQueue/cancel(_:)`` would. Returns whether the task was waiting or running.
        @discardableResult
        public func cancel(_ id: TaskID) async throws -> Bool {
            do {
                let rows = try await client.query(
                    "SELECT \(unescaped: schema).cq_cancel(\(id.rawValue))", logger: logger)
                for try await found in rows.decode(Bool.self) { return found }
                return false
            } catch {
                throw failure(of: error, doing: "cancel '\(id)'")
            }
        }

        static func liveStatus(
            id: TaskID, group: ConcurrencyGroupID, slot: Int?, elapsed: Double, ahead: Int, waiting: Int,
            holdSeconds: Double?, slots: Int
        ) -> TaskStatus {
            let hold = holdSeconds ?? 0
            if let slot {
                let eta = Duration.seconds(max(0, hold - elapsed))
                return TaskStatus(
                    id: id, group: group,
                    state: .running(.init(slot: slot, progress: nil, step: nil, elapsed: .seconds(elapsed), eta: eta)))
            }
            let wait = Duration.seconds(hold * Double(ahead + 1) / Double(max(1, slots)))
            return TaskStatus(
                id: id, group: group,
                state: .queued(
                    .init(
                        position: ahead, queueSize: max(waiting, ahead + 1), heldBy: .group, estimatedWait: wait,
                        eta: wait + .seconds(hold))))
        }
    }
#endif
