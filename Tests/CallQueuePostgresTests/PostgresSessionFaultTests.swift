#if Postgres
    import CallQueue
    import Foundation
    import PostgresNIO
    import XCTest

    @testable import CallQueuePostgres
    import CallQueueTestSupport

    /// Faults between a replica and its session, against a real PostgreSQL: answers that land after their
    /// session was lost, answers that never land, a lock held by another client, and shutdown.
    final class PostgresSessionFaultTests: XCTestCase {
        /// An enqueue that waited on the group's row lock while the replica lost its session and opened a new one
        /// fails in the database for the old session. That failure must not end the new session (it did: every
        /// later enqueue then failed `unavailable` while the heartbeat kept the new session alive); the call takes
        /// its place on the new session instead.
        func testAFailureOfAnOldSessionLeavesTheNewOneAlone() async throws {
            let cluster = try TestCluster()
            defer { Task { await cluster.stop() } }
            let a = try await cluster.startReplica("a")
            let old = try XCTUnwrap(a.openSession)
            let (locked, unlock, lockHolder) = try await holdGroupLock(cluster)
            await locked.wait()
            let call = try a.queue.submit(id: "late", group: "gpu") { context in context.permit?.fence }
            try await eventually("the enqueue waits on the group's lock") {
                let rows = try await cluster.sql(
                    "SELECT count(*) FROM pg_locks WHERE NOT granted AND locktype IN ('tuple', 'transactionid')")
                return try rows[0].decode(Int64.self) > 0
            }
            // The database expires the session; the heartbeat hears it and the listener opens a new one.
            try await cluster.sql(
                "UPDATE \(cluster.schema).cq_session SET lease_until = now() - interval '1 second' WHERE id = '\(old)'")
            try await eventually("a new session") { a.openSession.map { $0 != old } ?? false }
            let new = try XCTUnwrap(a.openSession)
            unlock.open()
            try await lockHolder.value

            let fence = try await value(of: call, "the late call ran on the new session")
            XCTAssertNotNil(fence, "the call ran with a grant of the new session")
            XCTAssertEqual(a.openSession, new, "the old session's failure left the new one open")
            let next = try a.queue.submit(id: "next", group: "gpu") { context in context.permit?.fence }
            let nextFence = try await next.value
            XCTAssertGreaterThan(nextFence ?? 0, fence ?? 0)
            try await eventually("released") { try await cluster.count("true") == 0 }
        }

        /// A ticket committed on a session that is lost before the replica records it went with that session;
        /// the call is enqueued again on the new session, never left waiting for a grant nobody will send.
        func testATicketOfASessionLostBeforeItIsRecordedIsTakenAgain() async throws {
            let cluster = try TestCluster()
            defer { Task { await cluster.stop() } }
            let a = try await cluster.startReplica("a")
            let old = try XCTUnwrap(a.openSession)
            let committed = Gate()
            let register = Gate()
            a.beforeRegistering {
                committed.open()
                await register.wait()
            }
            let call = try a.queue.submit(id: "call", group: "gpu") { context in context.permit?.fence }
            await committed.wait()
            a.beforeRegistering(nil)
            try await cluster.sql(
                "UPDATE \(cluster.schema).cq_session SET lease_until = now() - interval '1 second' WHERE id = '\(old)'")
            try await eventually("a new session") { a.openSession.map { $0 != old } ?? false }
            register.open()
            let fence = try await value(of: call, "the call ran on the new session")
            XCTAssertNotNil(fence)
            try await eventually("no ticket left") { try await cluster.count("true") == 0 }
        }

        /// An enqueue whose ticket was committed but whose answer never came back (a connection cut after the
        /// commit, or an answer later than `statementTimeout`): the call fails with `unavailable`, and the
        /// ticket, which holds the only slot, is found by the next heartbeat and released, so the other
        /// replica's call runs.
        func testATicketWhoseEnqueueAnswerWasLostIsReleasedByTheHeartbeat() async throws {
            let cluster = try TestCluster()
            defer { Task { await cluster.stop() } }
            let a = try await cluster.startReplica("a")
            let b = try await cluster.startReplica("b")
            a.loseNextEnqueueReply()
            let lost = try a.queue.submit(id: "lost", group: "gpu") { _ in XCTFail("a call without a ticket ran") }
            do {
                try await lost.value
                XCTFail("the call ran without its enqueue's answer")
            } catch let error as CallQueueError {
                XCTAssertEqual(error.code, .unavailable, "\(error)")
            }
            let orphans = try await cluster.count("task = 'lost' AND slot IS NOT NULL")
            XCTAssertEqual(orphans, 1, "the orphan holds the slot")
            let other = try b.queue.submit(id: "other", group: "gpu") { context in context.permit?.slot }
            let slot = try await value(of: other, "the orphan's slot went on")
            XCTAssertEqual(slot, 0)
            try await eventually("no ticket left") { try await cluster.count("true") == 0 }
        }

        /// Connection settings that set no timeouts (a user who builds them for TLS) and another client that holds
        /// a group's row lock and never lets go: the enqueue fails with a typed error after the schema's lock
        /// timeout instead of waiting forever, and the listener connection has the source's own timeouts.
        func testALockHeldByAnotherClientFailsTheEnqueueWithoutTimeoutSettings() async throws {
            let cluster = try TestCluster()
            defer { Task { await cluster.stop() } }
            let a = try await cluster.startReplica("a", runsAs: .plainSettings)
            let listenerSettings = a.source.listenerConfiguration.options.additionalStartupParameters.map(\.0)
            XCTAssertTrue(listenerSettings.contains("statement_timeout"), "\(listenerSettings)")
            XCTAssertTrue(listenerSettings.contains("lock_timeout"), "\(listenerSettings)")
            let (locked, unlock, lockHolder) = try await holdGroupLock(cluster)
            await locked.wait()
            let call = try a.queue.submit(id: "blocked", group: "gpu") { _ in }
            do {
                try await call.value
                XCTFail("the call ran while another client held the group's lock")
            } catch let error as CallQueueError {
                XCTAssertEqual(error.code, .unavailable, "\(error)")
                XCTAssertTrue(error.message.contains("lock"), error.message)
            }
            unlock.open()
            try await lockHolder.value
            let after = try a.queue.submit(id: "after", group: "gpu") { context in context.permit?.slot }
            let slot = try await after.value
            XCTAssertEqual(slot, 0)
            try await eventually("no ticket left") { try await cluster.count("true") == 0 }
        }

        /// The connection of an enqueue is cut while the enqueue waits on the group's lock (before its commit):
        /// the enqueue is sent again on another connection, the call runs once, and nothing is left behind. (It
        /// failed with `unavailable` before; and the pool could hand the next call a connection the server had
        /// cut, which failed that call too.)
        func testAConnectionCutMidEnqueueIsSentAgainOnAnotherConnection() async throws {
            let cluster = try TestCluster()
            defer { Task { await cluster.stop() } }
            let a = try await cluster.startReplica("a")
            let (locked, unlock, lockHolder) = try await holdGroupLock(cluster)
            await locked.wait()
            let runs = Recorder<Int>()
            let call = try a.queue.submit(id: "cut", group: "gpu") { context in
                runs.append(context.permit?.slot ?? -1)
            }
            try await terminateLockWaiters(cluster)
            unlock.open()
            try await lockHolder.value
            try await value(of: call, "the cut call ran")
            XCTAssertEqual(runs.elements, [0])
            let next = try a.queue.submit(id: "next", group: "gpu") { context in context.permit?.slot }
            let slot = try await value(of: next, "the next call ran")
            XCTAssertEqual(slot, 0)
            try await eventually("no ticket left") { try await cluster.count("true") == 0 }
        }

        /// The connection of a release is cut while the release waits on the group's lock: the release is sent
        /// again, and the other replica's waiter gets the slot.
        func testAConnectionCutMidReleaseIsRetried() async throws {
            let held = try await HeldSlot.start()
            defer { Task { await held.cluster.stop() } }
            let (locked, unlock, lockHolder) = try await holdGroupLock(held.cluster)
            await locked.wait()
            async let permit = held.releaseAndGrantNext()
            try await terminateLockWaiters(held.cluster)
            unlock.open()
            try await lockHolder.value
            let granted = try await permit
            XCTAssertEqual(granted?.slot, 0)
            try await eventually("no ticket left") { try await held.cluster.count("true") == 0 }
        }

        /// Another client's transaction that holds the group's row lock until the returned gate opens.
        private func holdGroupLock(_ cluster: TestCluster) async throws -> (Gate, Gate, Task<Void, any Error>) {
            let locked = Gate()
            let unlock = Gate()
            let holder = Task {
                try await cluster.admin.withTransaction(logger: testLogger) { connection in
                    try await connection.query(
                        PostgresQuery(
                            unsafeSQL: "SELECT 1 FROM \(cluster.schema).cq_group WHERE name = 'gpu' FOR UPDATE"),
                        logger: testLogger)
                    locked.open()
                    await unlock.wait()
                }
            }
            return (locked, unlock, holder)
        }

        /// Waits until a backend waits on a lock, then cuts its connection.
        private func terminateLockWaiters(_ cluster: TestCluster) async throws {
            try await eventually("a backend waits on the group's lock") {
                let rows = try await cluster.sql(
                    """
                    SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                    WHERE datname = current_database() AND wait_event_type = 'Lock'
                    """)
                return try rows[0].decode(Int64.self) > 0
            }
        }

        /// A graceful shutdown of a replica run in a `ServiceGroup` (client first, then the source), with a lease
        /// of two minutes: its waiting call leaves at once with `closed`, its running call finishes within the
        /// grace period, and the other replica's waiter gets the slot at once, not after the lease.
        func testAGracefulShutdownHandsTheSlotOnWithoutWaitingOutTheLease() async throws {
            let cluster = try TestCluster(lease: .seconds(120))
            defer { Task { await cluster.stop() } }
            let a = try await cluster.startReplica("a", runsAs: .serviceGroup) {
                $0.shutdownGracePeriod = .seconds(60)
            }
            let b = try await cluster.startReplica("b")
            let finish = Gate()
            let holder = try a.queue.submit(id: "holder", group: "gpu") { _ in
                await finish.wait()
                return "finished"
            }
            try await eventually("holding") { try await cluster.count("slot IS NOT NULL") == 1 }
            let waiting = try a.queue.submit(id: "waiting", group: "gpu") { _ in XCTFail("ran after the shutdown") }
            try await a.waitForTicket("waiting", in: cluster)
            let other = try b.queue.submit(id: "other", group: "gpu") { context in context.permit?.fence }
            try await b.waitForTicket("other", in: cluster)

            let shutdown = Task { try await a.shutDownGracefully() }
            do {
                try await waiting.value
                XCTFail("a waiting call stayed in line through the shutdown")
            } catch let error as CallQueueError {
                XCTAssertEqual(error.code, .closed, "\(error)")
            }
            try await eventually("the waiting call's ticket left") { try await cluster.count("task = 'waiting'") == 0 }
            let holding = try await cluster.count("task = 'holder'")
            XCTAssertEqual(holding, 1, "the running call keeps its slot in its grace")
            finish.open()
            let result = try await holder.value
            XCTAssertEqual(result, "finished")
            try await shutdown.value
            // Well inside the two-minute lease (eventually gives up after one).
            let fence = try await other.value
            XCTAssertNotNil(fence)
            let live = try await cluster.sql(
                "SELECT count(*) FROM \(cluster.schema).cq_session WHERE replica = 'a' AND lease_until > now()")
            XCTAssertEqual(try live[0].decode(Int64.self), 0, "the stopped replica's session ended")
            try await eventually("no ticket left") { try await cluster.count("true") == 0 }
        }

        /// A running call that outlasts the grace period is stopped with `closed`, then the session ends.
        func testAGracefulShutdownStopsARunningCallAfterItsGracePeriod() async throws {
            let cluster = try TestCluster(lease: .seconds(120))
            defer { Task { await cluster.stop() } }
            let a = try await cluster.startReplica("a", runsAs: .serviceGroup) {
                $0.shutdownGracePeriod = .milliseconds(100)
            }
            let b = try await cluster.startReplica("b")
            let holder = try a.queue.submit(id: "holder", group: "gpu") { _ in
                try await Task.sleep(for: .seconds(3600))
            }
            try await eventually("holding") { try await cluster.count("slot IS NOT NULL") == 1 }
            let other = try b.queue.submit(id: "other", group: "gpu") { context in context.permit?.fence }
            try await b.waitForTicket("other", in: cluster)
            try await a.shutDownGracefully()
            do {
                try await holder.value
                XCTFail("the running call outlasted the shutdown")
            } catch let error as CallQueueError {
                XCTAssertEqual(error.code, .closed, "\(error)")
            }
            let fence = try await other.value
            XCTAssertNotNil(fence)
            try await eventually("no ticket left") { try await cluster.count("true") == 0 }
        }
    }
#endif
