#if Postgres
    import CallQueue
    import Foundation
    import Logging
    import NIOConcurrencyHelpers
    import PostgresNIO

    // The replica's session: its tickets, the listener connection with the heartbeat on it, the lease watch,
    // and the background work (reaper, releases, position refreshes).

    extension PostgresPermitSource {
        struct Entry {
            var ticket: ClusterTicket
            var events: ClusterTicketEvents
            var session: UUID
            var granted = false
            /// The registration number: a heartbeat sent after it must list the ticket.
            var registered: UInt64
        }

        struct PendingLeave {
            var ticket: ClusterTicket
            var session: UUID
            var done: String?
            /// Whether the call's run counts in the group's run time (it ran, and was not cancelled).
            var timed: Bool
        }

        struct State {
            /// The session this incarnation uses; a new one after the old is lost.
            var session: UUID? = nil
            /// Whether the session's row exists and its channel is listened to: enqueues may go.
            var isOpen = false
            var startFailure: CallQueueError? = nil
            var entries: [Int64: Entry] = [:]
            var registrations: UInt64 = 0
            /// The number of the last enqueue sent; each ticket records the number of the enqueue that took it.
            var requests: Int64 = 0
            /// Enqueues sent and not yet answered: a ticket of one of these, listed by a heartbeat before this
            /// replica records it, is not an orphan.
            var requestsInFlight: Set<Int64> = []
            /// Set on a graceful shutdown: waiting calls have left; running ones have their grace period.
            var draining = false
            /// Streams of ``PostgresPermitSource/updates(of:)``, and the groups announced since their last read.
            var watchers: [UUID: Watcher] = [:]
            var watchedGroups: Set<String> = []
            /// Set at every heartbeat: the next routine read covers every watched task (an announcement may
            /// have been lost).
            var watchEverything = false
            /// Grants heard before their enqueue returned.
            var earlyGrants: [Int64: ClusterPermit] = [:]
            /// Cancels heard before their enqueue returned: a cancel by id from another replica may reach this
            /// one between the commit of the ticket and its registration here.
            var earlyCancels: Set<Int64> = []
            var pendingLeaves: [PendingLeave] = []
            /// Tickets given back whose release has not yet been confirmed; a heartbeat that still lists one
            /// sends its release again (a query can be lost with a connection the server cut).
            var leaving: [Int64: PendingLeave] = [:]
            /// When this replica must stop its running calls unless a heartbeat renews the lease first.
            var leaseDeadline: ContinuousClock.Instant? = nil
            var leaseLossReported = false
            var movedGroups: Set<String> = []
            /// Test hooks: a replica that stops renewing, one that misses its grant notifications.
            var heartbeatsPaused = false
            var ignoresGrantNotifications = false
            var reaperPaused = false
            var leavesPaused = false
            var losesNextRelease = false
            var losesNextEnqueueReply = false
            /// Awaited by an enqueue between its ticket's commit and its registration here.
            var beforeRegistering: (@Sendable () async -> Void)? = nil

            /// Gives a ticket back: the release loop sends it, and it stays in `leaving` until the database
            /// confirms it (a heartbeat that still lists it sends it again).
            mutating func scheduleLeave(_ leave: PendingLeave) {
                pendingLeaves.append(leave)
                leaving[leave.ticket.id] = leave
            }
        }

        /// Signals that wake the background loops.
        struct Wakeups: Sendable {
            let leaves: AsyncStream<Void>.Continuation
            let leaveStream: AsyncStream<Void>
            let moved: AsyncStream<Void>.Continuation
            let movedStream: AsyncStream<Void>
            let watch: AsyncStream<Void>.Continuation
            let watchStream: AsyncStream<Void>

            init() {
                (leaveStream, leaves) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1))
                (movedStream, moved) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1))
                (watchStream, watch) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1))
            }
        }

        struct SessionLost: Error {}

        // MARK: Session

        /// The open session, waiting for it up to the start timeout.
        func openSession() async throws -> UUID {
            let giveUp = ContinuousClock.now + configuration.startTimeout
            while true {
                let (session, isOpen, failure) = state.withLockedValue { ($0.session, $0.isOpen, $0.startFailure) }
                if let failure { throw failure }
                if isOpen, let session { return session }
                if ContinuousClock.now >= giveUp {
                    throw CallQueueError(
                        .unavailable,
                        "replica '\(configuration.replica)' has no session with the database after "
                            + "\(configuration.startTimeout): check that PostgresPermitSource.run() runs and the "
                            + "database is reachable")
                }
                try await Task.sleep(for: .milliseconds(10))
            }
        }

        /// Records a ticket the database took; returns its permit when it was granted already (at once, or by a
        /// notification that came first), and whether a cancel of it was heard first. `nil` when the session the
        /// ticket was taken on is no longer this replica's (the ticket went with it), or when the source is
        /// shutting down (the ticket is given back; the call fails with `closed`).
        func register(
            _ ticket: ClusterTicket, events: ClusterTicketEvents, session: UUID, number: Int64, slot: Int32?,
            fence: Int64?
        ) -> (permit: ClusterPermit?, cancelled: Bool)? {
            state.withLockedValue { state in
                state.requestsInFlight.remove(number)
                guard state.isOpen, state.session == session else { return nil }
                if state.draining {
                    state.scheduleLeave(PendingLeave(ticket: ticket, session: session, done: nil, timed: false))
                    return nil
                }
                state.registrations += 1
                var entry = Entry(ticket: ticket, events: events, session: session, registered: state.registrations)
                var permit: ClusterPermit?
                if let slot, let fence {
                    permit = ClusterPermit(slot: Int(slot), fence: fence)
                } else if let early = state.earlyGrants.removeValue(forKey: ticket.id) {
                    permit = early
                }
                entry.granted = permit != nil
                state.entries[ticket.id] = entry
                return (permit, state.earlyCancels.remove(ticket.id) != nil)
            }
        }

        /// A typed error for a database failure. A "session lost" failure ends `session` here when it is still
        /// this replica's: a late answer for an older session leaves the current one alone.
        func failure(
            of error: any Error, doing what: String, group: ConcurrencyGroupID? = nil, session: UUID? = nil
        ) -> CallQueueError {
            if let error = error as? CallQueueError { return error }
            if let error = error as? PSQLError, let sqlState = error.serverInfo?[.sqlState] {
                let message = error.serverInfo?[.message] ?? "\(error.code)"
                switch sqlState {
                case "P0002":
                    return CallQueueError(
                        .unknownGroup,
                        "the database does not know group '\(group?.name ?? "?")' (\(message)); declare it in "
                            + "PostgresPermitSource.Configuration.groups of a running replica", group: group)
                case "P0001":
                    if let session { sessionLost(session) }
                    return CallQueueError(
                        .leaseLost, "replica '\(configuration.replica)' lost its session while trying to \(what)",
                        group: group)
                case "55P03", "57014":
                    return CallQueueError(
                        .unavailable,
                        "the database gave up waiting to \(what) (\(message)); another client holds the group's lock "
                            + "or the database is overloaded", group: group)
                case "3F000", "42P01", "42883":
                    return CallQueueError(
                        .unavailable,
                        "the schema '\(schema)' is missing or incomplete (\(message)); is the source running?",
                        group: group)
                default:
                    return CallQueueError(.unavailable, "the database refused to \(what): \(message)", group: group)
                }
            }
            return CallQueueError(
                .unavailable, "could not \(what): the database is unreachable (\(error))", group: group)
        }

        /// The session is gone (reaped): every ticket is lost; a new session is opened by the listener loop. A
        /// session that is no longer this replica's changes nothing.
        func sessionLost(_ session: UUID) {
            let lost = state.withLockedValue { state -> [Entry]? in
                guard state.isOpen, state.session == session else { return nil }
                state.isOpen = false
                state.session = nil
                state.leaseDeadline = nil
                defer { state.entries = [:] }
                return Array(state.entries.values)
            }
            guard let lost else { return }
            logger.warning(
                "call-queue replica lost its session; its tickets are gone",
                metadata: ["replica": "\(configuration.replica)", "tickets": "\(lost.count)"])
            let error = CallQueueError(
                .leaseLost,
                "replica '\(configuration.replica)' lost its database session (its lease expired); the call lost its "
                    + "place or slot")
            for entry in lost.sorted(by: { $0.ticket.id < $1.ticket.id }) { entry.events.lost(error) }
        }

        // MARK: Preparing the database

        func prepare() async throws {
            try await client.withTransaction(logger: logger) { connection in
                try await connection.query(PostgresQuery(unsafeSQL: Schema.lockStatement(schema)), logger: logger)
                for statement in Schema.preludeStatements(schema) {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                }
                let rows = try await connection.query(
                    "SELECT max(version) FROM \(unescaped: schema).cq_version", logger: logger)
                var stored: Int32?
                for try await version in rows.decode(Int32?.self) { stored = version }
                if let stored, stored > Schema.version {
                    throw CallQueueError(
                        .incompatibleSchema,
                        "schema '\(schema)' is at version \(stored), newer than this library's \(Schema.version); "
                            + "upgrade this replica or give it a schema of its own")
                }
                if stored.map(Int.init) != Schema.version {
                    if stored == nil {
                        for statement in Schema.version1Statements(schema) {
                            try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                        }
                    }
                    if (stored ?? 1) < 2 {
                        for statement in Schema.version2Statements(schema) {
                            try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                        }
                    }
                    for statement in Schema.functionStatements(schema) {
                        try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                    }
                    try await connection.query(
                        "INSERT INTO \(unescaped: schema).cq_version VALUES (\(Int32(Schema.version)))", logger: logger)
                }
            }
            for (group, slots) in configuration.groups.sorted(by: { $0.key.name < $1.key.name }) {
                try await client.query(
                    """
                    SELECT \(unescaped: schema).cq_configure(\(group.name), \(Int32(slots)), \
                    make_interval(secs => \(configuration.restartGrace.seconds)))
                    """, logger: logger)
            }
        }

        /// Runs `body` until it succeeds, with backoff; an error of this library is not retried.
        func retrying(_ what: String, _ body: () async throws -> Void) async throws {
            var delay = Duration.milliseconds(100)
            while true {
                do {
                    do {
                        return try await body()
                    } catch let error as PostgresTransactionError {
                        throw error.closureError ?? error.beginError ?? error.commitError ?? error
                    }
                } catch let error as CallQueueError {
                    throw error
                } catch let error as PSQLError where error.serverInfo?[.sqlState] != nil {
                    throw failure(of: error, doing: what)
                } catch {
                    try Task.checkCancellation()
                    logger.warning("call-queue could not \(what); retrying", metadata: ["error": "\(error)"])
                    try await Task.sleep(for: delay)
                    delay = min(delay * 2, configuration.heartbeat)
                }
            }
        }

        // MARK: Listener and heartbeat

        /// Keeps the listener connection: listen on the session's and the schema's channels, open the session if
        /// needed, then heartbeat on the same connection. Any failure reconnects with backoff.
        func listenerLoop() async {
            var delay = Duration.milliseconds(50)
            var connectionNumber = 0
            while !Task.isCancelled {
                connectionNumber += 1
                let session = state.withLockedValue { state -> UUID in
                    if let session = state.session { return session }
                    let session = UUID()
                    state.session = session
                    return session
                }
                do {
                    let connection = try await PostgresConnection.connect(
                        configuration: listenerConfiguration, id: connectionNumber, logger: logger)
                    do {
                        try await listen(on: connection, session: session) { delay = .milliseconds(50) }
                    } catch {
                        try? await connection.close()
                        throw error
                    }
                    try? await connection.close()
                } catch is CancellationError {
                    return
                } catch is SessionLost {
                    continue  // a new session at once
                } catch {
                    if Task.isCancelled { return }
                    logger.notice(
                        "call-queue listener connection failed; reconnecting",
                        metadata: ["replica": "\(configuration.replica)", "error": "\(error)", "retryIn": "\(delay)"])
                }
                try? await Task.sleep(for: delay)
                delay = min(delay * 2, configuration.heartbeat)
            }
        }

        private func listen(on connection: PostgresConnection, session: UUID, connected: () -> Void) async throws {
            try await connection.listen(on: Schema.movedChannel(schema)) { moved in
                try await connection.listen(on: Schema.sessionChannel(session.uuidString)) { mine in
                    let isOpen = state.withLockedValue { $0.isOpen }
                    if !isOpen {
                        let sent = ContinuousClock.now
                        try await connection.query(
                            """
                            INSERT INTO \(unescaped: schema).cq_session VALUES (\(session), \(configuration.replica), \
                            now() + make_interval(secs => \(configuration.lease.seconds)))
                            """, logger: logger)
                        state.withLockedValue { state in
                            state.isOpen = true
                            state.leaseDeadline = sent + configuration.lease - configuration.safetyMargin
                            state.leaseLossReported = false
                        }
                        logger.info(
                            "call-queue replica opened its session",
                            metadata: ["replica": "\(configuration.replica)", "session": "\(session)"])
                    }
                    connected()
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        group.addTask {
                            for try await notification in moved { self.heardMoved(notification.payload) }
                            throw CallQueueError(.unavailable, "the listener's channel closed")
                        }
                        group.addTask {
                            for try await notification in mine { self.heardOnSession(notification.payload) }
                            throw CallQueueError(.unavailable, "the listener's channel closed")
                        }
                        group.addTask { try await self.heartbeatLoop(on: connection, session: session) }
                        try await group.next()
                        group.cancelAll()
                    }
                }
            }
        }

        /// Renews the lease every heartbeat, at once first (a poll after a reconnect), and reconciles the
        /// tickets the database lists with those this replica holds.
        private func heartbeatLoop(on connection: PostgresConnection, session: UUID) async throws {
            while true {
                if !state.withLockedValue({ $0.heartbeatsPaused }) {
                    try await heartbeat(on: connection, session: session)
                }
                try await Task.sleep(for: configuration.heartbeat)
            }
        }

        func heartbeat(on connection: PostgresConnection, session: UUID) async throws {
            let snapshot = state.withLockedValue { $0.registrations }
            let sent = ContinuousClock.now
            var listed: [Int64: (group: String, slot: Int32?, fence: Int64?, request: Int64?)] = [:]
            do {
                let rows = try await connection.query(
                    """
                    SELECT ticket, grp, slot, fence, req FROM \(unescaped: schema).cq_beat(\(session), \
                    make_interval(secs => \(configuration.lease.seconds)), \
                    make_interval(secs => \(configuration.restartGrace.seconds)))
                    """, logger: logger)
                for try await (ticket, group, slot, fence, request) in rows.decode(
                    (Int64, String, Int32?, Int64?, Int64?).self)
                {
                    listed[ticket] = (group, slot, fence, request)
                }
            } catch let error as PSQLError where error.serverInfo?[.sqlState] == "P0001" {
                sessionLost(session)
                throw SessionLost()
            }
            var resend = false
            var orphans = 0
            var grants: [(Entry, ClusterPermit)] = []
            var gone: [Entry] = []
            state.withLockedValue { state in
                state.leaseDeadline = sent + configuration.lease - configuration.safetyMargin
                state.leaseLossReported = false
                state.earlyGrants = state.earlyGrants.filter { listed[$0.key] != nil }
                state.earlyCancels = state.earlyCancels.filter { listed[$0] != nil }
                // Releases not yet confirmed: still listed, they are sent again; gone, they are done.
                for (id, leave) in state.leaving where leave.session == session {
                    if listed[id] != nil {
                        state.pendingLeaves.append(leave)
                        resend = true
                    } else {
                        state.leaving[id] = nil
                    }
                }
                // Orphans: tickets of this session that no call holds (their enqueue's answer was given up on, or
                // lost with a connection). They are released, so no slot stays held by nobody.
                for (id, row) in listed where state.entries[id] == nil && state.leaving[id] == nil {
                    if let request = row.request, state.requestsInFlight.contains(request) { continue }
                    state.scheduleLeave(
                        PendingLeave(
                            ticket: ClusterTicket(group: ConcurrencyGroupID(row.group), id: id), session: session,
                            done: nil, timed: false))
                    resend = true
                    orphans += 1
                }
                for (id, entry) in state.entries where entry.session == session {
                    if let row = listed[id] {
                        if !entry.granted, let slot = row.slot, let fence = row.fence {
                            state.entries[id]?.granted = true
                            grants.append((entry, ClusterPermit(slot: Int(slot), fence: fence)))
                        }
                    } else if entry.registered <= snapshot {
                        state.entries[id] = nil
                        gone.append(entry)
                    }
                }
            }
            if orphans > 0 {
                logger.notice(
                    "call-queue heartbeat found tickets no call holds (an enqueue's answer was lost); releasing them",
                    metadata: ["replica": "\(configuration.replica)", "tickets": "\(orphans)"])
            }
            if resend { wakeups.leaves.yield() }
            for (entry, permit) in grants.sorted(by: { $0.0.ticket.id < $1.0.ticket.id }) {
                logger.debug("call-queue grant found by heartbeat", metadata: ["ticket": "\(entry.ticket)"])
                entry.events.granted(entry.ticket, permit: permit)
            }
            let error = CallQueueError(
                .leaseLost, "the database no longer holds this call's ticket (its replica's lease expired)")
            for entry in gone { entry.events.lost(error) }
        }

        func heardOnSession(_ payload: String) {
            let parts = payload.split(separator: " ")
            guard parts.count >= 2, let id = Int64(parts[1]) else { return }
            switch parts[0] {
            case "g":
                guard parts.count == 4, let slot = Int(parts[2]), let fence = Int64(parts[3]) else { return }
                let permit = ClusterPermit(slot: slot, fence: fence)
                let entry = state.withLockedValue { state -> Entry? in
                    if state.ignoresGrantNotifications { return nil }
                    guard let entry = state.entries[id] else {
                        state.earlyGrants[id] = permit
                        return nil
                    }
                    if entry.granted { return nil }
                    state.entries[id]?.granted = true
                    return entry
                }
                entry?.events.granted(entry!.ticket, permit: permit)
            case "c":
                let entry = state.withLockedValue { state -> Entry? in
                    guard let entry = state.entries[id] else {
                        // Its enqueue has not returned yet: the registration delivers it.
                        state.earlyCancels.insert(id)
                        return nil
                    }
                    return entry
                }
                entry?.events.cancelRequested()
            default:
                break
            }
        }

        // MARK: Lease watch

        /// Stops the running calls when the lease could not be renewed in time (``LeaseLossPolicy``).
        func leaseWatch() async {
            while !Task.isCancelled {
                let deadline = state.withLockedValue { $0.leaseDeadline }
                let now = ContinuousClock.now
                if let deadline, now < deadline {
                    try? await Task.sleep(until: min(deadline, now + configuration.heartbeat), clock: .continuous)
                    continue
                }
                if deadline != nil { leaseExpired() }
                try? await Task.sleep(for: min(configuration.heartbeat, .milliseconds(100)))
            }
        }

        private func leaseExpired() {
            let running = state.withLockedValue { state -> [Entry] in
                guard !state.leaseLossReported else { return [] }
                state.leaseLossReported = true
                return state.entries.values.filter(\.granted)
            }
            guard !running.isEmpty else { return }
            logger.error(
                "call-queue replica could not renew its lease in time",
                metadata: [
                    "replica": "\(configuration.replica)", "running": "\(running.count)",
                    "policy": "\(configuration.onLeaseLoss)",
                ])
            guard configuration.onLeaseLoss == .cancelRunning else { return }
            let error = CallQueueError(
                .leaseLost,
                "replica '\(configuration.replica)' could not renew its lease within lease - safetyMargin; the call "
                    + "was stopped before its slot could go to another replica")
            for entry in running { entry.events.lost(error) }
        }

        // MARK: Background work

        func reaperLoop() async {
            while !Task.isCancelled {
                let jitter = Double.random(in: 0.8...1.2)
                try? await Task.sleep(for: configuration.reaperInterval * jitter)
                if Task.isCancelled || state.withLockedValue({ $0.reaperPaused }) { continue }
                do {
                    try await client.query(reapQuery, logger: logger)
                } catch {
                    logger.debug("call-queue reaper failed; next period", metadata: ["error": "\(error)"])
                }
            }
        }

        /// Drops expired sessions' tickets, grants their slots, and forgets final statuses past their retention.
        var reapQuery: PostgresQuery {
            """
            SELECT \(unescaped: schema).cq_reap(make_interval(secs => \(configuration.restartGrace.seconds)), \
            make_interval(secs => \(configuration.finishedStatusRetention.seconds)))
            """
        }

        /// Gives tickets back, each retried with backoff until it takes effect or its session is gone.
        func leaveLoop() async {
            await withDiscardingTaskGroup { group in
                for await _ in wakeups.leaveStream {
                    let pending = state.withLockedValue { state -> [PendingLeave] in
                        if state.leavesPaused { return [] }
                        defer { state.pendingLeaves = [] }
                        return state.pendingLeaves
                    }
                    for leave in pending {
                        group.addTask { await self.perform(leave) }
                    }
                }
            }
        }

        private func perform(_ leave: PendingLeave) async {
            var delay = Duration.milliseconds(20)
            while !Task.isCancelled {
                do {
                    if state.withLockedValue({ state in
                        defer { state.losesNextRelease = false }; return state.losesNextRelease
                    }) {
                        return  // a test's lost release: never sent, never confirmed
                    }
                    // Bounded: a query sent on a connection the server has just cut can stay unanswered; the
                    // release is idempotent, so a late answer to an abandoned attempt does no harm.
                    let query: PostgresQuery = """
                        SELECT \(unescaped: schema).cq_leave(\(leave.ticket.id), \(leave.session), \(leave.done), \
                        \(leave.timed), make_interval(secs => \(configuration.restartGrace.seconds)))
                        """
                    try await within(configuration.statementTimeout) { [client, logger] in
                        _ = try await client.query(query, logger: logger)
                    }
                    state.withLockedValue { _ = $0.leaving.removeValue(forKey: leave.ticket.id) }
                    return
                } catch {
                    logger.notice(
                        "call-queue release failed; retrying",
                        metadata: ["ticket": "\(leave.ticket)", "error": "\(error)"])
                    try? await Task.sleep(for: delay)
                    delay = min(delay * 2, configuration.heartbeat)
                }
            }
        }

        /// Runs `operation`, giving up after `limit`, or when the caller is cancelled, without waiting for it (it
        /// may finish later, unobserved). An answer in time stops the timer, so nothing is left sleeping.
        func within<Value: Sendable>(
            _ limit: Duration, _ operation: @escaping @Sendable () async throws -> Value
        ) async throws -> Value {
            let race = Race<Value>()
            return try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { continuation in
                    guard race.start(continuation) else { return }  // cancelled before it began: not sent
                    let work = Task {
                        do {
                            race.finish(.success(try await operation()))
                        } catch {
                            race.finish(.failure(error))
                        }
                    }
                    race.setTimer(
                        Task {
                            do { try await Task.sleep(for: limit) } catch { return }  // the answer came first
                            work.cancel()
                            race.finish(
                                .failure(CallQueueError(.unavailable, "the database did not answer within \(limit)")))
                        })
                }
            } onCancel: {
                race.finish(.failure(CancellationError()))
            }
        }

        func heardMoved(_ group: String) {
            let (isNew, watched) = state.withLockedValue { state in
                let watched = !state.watchers.isEmpty
                if watched { state.watchedGroups.insert(group) }
                return (state.movedGroups.insert(group).inserted, watched)
            }
            if isNew { wakeups.moved.yield() }
            if watched { wakeups.watch.yield() }
        }

        /// Tells this replica's waiting calls their places after their groups' lines moved, at most once per
        /// refresh interval per group.
        func positionLoop() async {
            for await _ in wakeups.movedStream {
                try? await Task.sleep(for: configuration.positionRefreshInterval)
                let groups = state.withLockedValue { state in
                    defer { state.movedGroups = [] }
                    return state.movedGroups
                }
                for group in groups.sorted() {
                    do {
                        try await refreshPositions(in: group)
                    } catch {
                        logger.debug("call-queue position refresh failed", metadata: ["error": "\(error)"])
                    }
                }
            }
        }

        func refreshPositions(in group: String) async throws {
            let mine = state.withLockedValue { state in
                state.entries.values.filter { !$0.granted && $0.ticket.group.name == group }
            }
            guard let last = mine.map(\.ticket.id).max() else { return }
            // Ranked in the database along the waiting index, up to this replica's last ticket: only this replica's
            // rows come back, whatever the line's length.
            let ids = mine.map(\.ticket.id)
            let rows = try await client.query(
                """
                SELECT w.id, w.rank, g.waiting, g.hold_ms FROM (
                  SELECT id, row_number() OVER (ORDER BY id) - 1 AS rank FROM \(unescaped: schema).cq_ticket
                   WHERE grp = \(group) AND slot IS NULL AND id <= \(last)) w
                JOIN \(unescaped: schema).cq_group g ON g.name = \(group)
                WHERE w.id = ANY(\(ids))
                """, logger: logger)
            var places: [Int64: (position: Int, waiting: Int, holdMs: Double?)] = [:]
            for try await (id, rank, waiting, hold) in rows.decode((Int64, Int64, Int32, Double?).self) {
                places[id] = (Int(rank), Int(waiting), hold)
            }
            for entry in mine {
                guard let place = places[entry.ticket.id] else { continue }
                entry.events.positionChanged(
                    position: place.position, queueSize: max(place.waiting, place.position + 1),
                    runTimeEstimate: place.holdMs.map { .milliseconds($0) })
            }
        }

        /// A graceful shutdown: waiting calls leave the line now (their tickets are released), running calls get
        /// the grace period, then are stopped. Returns once no call holds a ticket here or the grace is over.
        func drain() async {
            let waiting = state.withLockedValue { state -> [Entry] in
                state.draining = true
                state.startFailure = CallQueueError(.closed, "the permit source is shutting down")
                let waiting = state.entries.values.filter { !$0.granted }
                for entry in waiting {
                    state.entries[entry.ticket.id] = nil
                    state.scheduleLeave(
                        PendingLeave(ticket: entry.ticket, session: entry.session, done: nil, timed: false))
                }
                return waiting
            }
            wakeups.leaves.yield()
            logger.info(
                "call-queue replica is shutting down",
                metadata: ["replica": "\(configuration.replica)", "waiting": "\(waiting.count)"])
            let error = CallQueueError(
                .closed, "replica '\(configuration.replica)' is shutting down; the call left the cluster-wide line")
            for entry in waiting.sorted(by: { $0.ticket.id < $1.ticket.id }) { entry.events.lost(error) }
            let giveUp = ContinuousClock.now + configuration.shutdownGracePeriod
            while ContinuousClock.now < giveUp, state.withLockedValue({ !$0.entries.isEmpty }) {
                do { try await Task.sleep(for: .milliseconds(10)) } catch { return }
            }
        }

        /// Ends the session on shutdown: every call still holding a ticket here is stopped with
        /// ``CallQueueError/Code/closed``, the lease expires now, and the slots go to the next in line.
        func endSession() async {
            let (session, remaining) = state.withLockedValue { state -> (UUID?, [Entry]) in
                defer {
                    state.isOpen = false
                    state.entries = [:]
                    state.startFailure = CallQueueError(.closed, "the permit source has stopped")
                }
                return (state.isOpen ? state.session : nil, Array(state.entries.values))
            }
            let error = CallQueueError(
                .closed,
                "replica '\(configuration.replica)' stopped its permit source; the call lost its place or slot")
            for entry in remaining.sorted(by: { $0.ticket.id < $1.ticket.id }) { entry.events.lost(error) }
            guard let session else { return }
            do {
                try await within(configuration.statementTimeout) { [client, schema, logger, reapQuery] in
                    try await client.query(
                        "UPDATE \(unescaped: schema).cq_session SET lease_until = now() WHERE id = \(session)",
                        logger: logger)
                    try await client.query(reapQuery, logger: logger)
                }
                logger.info(
                    "call-queue replica ended its session; its slots went on",
                    metadata: ["replica": "\(configuration.replica)", "session": "\(session)"])
            } catch {
                logger.notice(
                    "call-queue could not end its session; it expires with its lease", metadata: ["error": "\(error)"])
            }
        }

        /// The listener's settings with the source's timeouts where they set none.
        static func bounded(
            _ configuration: PostgresConnection.Configuration, statementTimeout: Duration
        ) -> PostgresConnection.Configuration {
            var configuration = configuration
            let milliseconds = String(Int((statementTimeout.seconds * 1000).rounded()))
            let defaults = [
                ("statement_timeout", milliseconds), ("lock_timeout", Schema.functionLockTimeout),
                ("idle_in_transaction_session_timeout", "10000"),
            ]
            for (name, value) in defaults
            where !configuration.options.additionalStartupParameters.contains(where: { $0.0 == name }) {
                configuration.options.additionalStartupParameters.append((name, value))
            }
            return configuration
        }
    }

    /// The first of an answer, a timeout and a cancellation resumes the continuation; the others do nothing.
    final class Race<Value: Sendable>: Sendable {
        private struct State {
            var continuation: CheckedContinuation<Value, any Error>?
            var early: Result<Value, any Error>?
            var timer: Task<Void, Never>?
            var done = false
        }
        private let state = NIOLockedValueBox(State())

        /// Returns false when the race is over already (its caller was cancelled): the continuation is resumed.
        func start(_ continuation: CheckedContinuation<Value, any Error>) -> Bool {
            let early = state.withLockedValue { state -> Result<Value, any Error>? in
                if let early = state.early { return early }
                state.continuation = continuation
                return nil
            }
            guard let early else { return true }
            continuation.resume(with: early)
            return false
        }

        func setTimer(_ timer: Task<Void, Never>) {
            let isDone = state.withLockedValue { state in
                if !state.done { state.timer = timer }
                return state.done
            }
            if isDone { timer.cancel() }
        }

        func finish(_ result: Result<Value, any Error>) {
            let (continuation, timer) = state.withLockedValue {
                state -> (CheckedContinuation<Value, any Error>?, Task<Void, Never>?) in
                guard !state.done else { return (nil, nil) }
                state.done = true
                if state.continuation == nil { state.early = result }
                defer { state.continuation = nil; state.timer = nil }
                return (state.continuation, state.timer)
            }
            timer?.cancel()
            continuation?.resume(with: result)
        }
    }

    extension Duration {
        var seconds: Double {
            let (whole, fraction) = components
            return Double(whole) + Double(fraction) / 1e18
        }
    }
#endif
