#if Postgres
    import CallQueue
    import Foundation
    import PostgresNIO
    import XCTest

    @testable import CallQueuePostgres
    import CallQueueTestSupport

    /// Cluster-wide groups against a real PostgreSQL: the schema's invariants, order and limits across replicas
    /// (separate pools, listeners and sessions in one process), status and cancel from any replica.
    final class PostgresClusterTests: XCTestCase {
        func testMigrationIsIdempotentAndRefusesANewerSchema() async throws {
            let cluster = try TestCluster()
            defer { Task { await cluster.stop() } }
            try await cluster.startReplica("a")
            try await cluster.startReplica("b")  // migrates again: nothing changes
            let versions = try await cluster.sql("SELECT version FROM \(cluster.schema).cq_version")
            XCTAssertEqual(versions.count, 1)

            try await cluster.sql("UPDATE \(cluster.schema).cq_version SET version = 99")
            let newer = try TestReplica(
                url: cluster.url, configuration: cluster.configuration("c"), limits: cluster.slots)
            do {
                _ = try await newer.source.openSession()
                XCTFail("a replica started on a newer schema")
            } catch let error as CallQueueError {
                XCTAssertEqual(error.code, .incompatibleSchema, "\(error)")
            }
            await newer.stop()
        }

        /// A schema left at version 1 with a line in it (tickets of a replica that is gone) is migrated to version
        /// 2: the waiting count is made from the rows, tickets get request numbers from then on, and version 1's
        /// function signatures still answer, for replicas of the older version during a rolling upgrade.
        func testVersionOneIsMigratedWithItsLine() async throws {
            let cluster = try TestCluster()
            defer { Task { await cluster.stop() } }
            let s = cluster.schema
            for statement in Schema.preludeStatements(s) + Schema.version1Statements(s) {
                try await cluster.sql(statement)
            }
            try await cluster.sql("INSERT INTO \(s).cq_version VALUES (1)")
            try await cluster.sql("INSERT INTO \(s).cq_group (name, slots) VALUES ('gpu', 1)")
            let old = UUID()
            try await cluster.sql(
                "INSERT INTO \(s).cq_session VALUES ('\(old)', 'old', now() + interval '1 hour')")
            try await cluster.sql(
                """
                INSERT INTO \(s).cq_ticket (grp, session, task, slot, fence) VALUES
                  ('gpu', '\(old)', 'held', 0, 1), ('gpu', '\(old)', 'w1', NULL, NULL), ('gpu', '\(old)', 'w2', NULL, NULL)
                """)

            let a = try await cluster.startReplica("a")
            let versions = try await cluster.sql("SELECT max(version) FROM \(s).cq_version")
            XCTAssertEqual(try versions[0].decode(Int32.self), Int32(Schema.version))
            let waiting = try await cluster.sql("SELECT waiting FROM \(s).cq_group WHERE name = 'gpu'")
            XCTAssertEqual(try waiting[0].decode(Int32.self), 2)

            // Version 1's signatures, as an older replica calls them.
            let beat = try await cluster.sql(
                "SELECT ticket FROM \(s).cq_heartbeat('\(old)', interval '1 hour', interval '30 seconds')")
            XCTAssertEqual(beat.count, 3)
            let enqueued = try await cluster.sql(
                "SELECT ahead, waiting FROM \(s).cq_enqueue('gpu', '\(old)', 'w3', interval '30 seconds')")
            let (ahead, inLine) = try enqueued[0].decode((Int64, Int64).self)
            XCTAssertEqual(ahead, 2)
            XCTAssertEqual(inLine, 3)

            // This replica's call waits behind the old line; its status counts the same places.
            let call = try a.queue.submit(id: "new", group: "gpu") { context in context.permit?.slot }
            try await a.waitForTicket("new", in: cluster)
            let status = try await a.source.status(of: "new")
            XCTAssertEqual(status?.state.queued?.position, 3)
            XCTAssertEqual(status?.state.queued?.queueSize, 4)
            let numbered = try await cluster.count("task = 'new' AND req IS NOT NULL")
            XCTAssertEqual(numbered, 1)
            // The old replica is gone: its session ends and its line passes on.
            try await cluster.sql("UPDATE \(s).cq_session SET lease_until = now() WHERE id = '\(old)'")
            let slot = try await call.value
            XCTAssertEqual(slot, 0)
            try await eventually("released") { try await cluster.count("true") == 0 }
            let after = try await cluster.sql("SELECT waiting FROM \(s).cq_group WHERE name = 'gpu'")
            XCTAssertEqual(try after[0].decode(Int32.self), 0)
        }

        /// A reader on replica b follows a task that waits and runs on replica a, as a load balancer without sticky
        /// sessions would send its event stream there: each place, the start and the final status, in order, with
        /// versions that only grow, then the stream ends.
        func testUpdatesOfATaskOnAnotherReplica() async throws {
            let cluster = try TestCluster()
            defer { Task { await cluster.stop() } }
            let a = try await cluster.startReplica("a")
            let b = try await cluster.startReplica("b")
            let finishHolder = Gate()
            let finishTask = Gate()
            let holder = try a.queue.submit(id: "holder", group: "gpu") { _ in await finishHolder.wait() }
            try await eventually("holding") { try await cluster.count("slot IS NOT NULL") == 1 }
            let ahead = try a.queue.submit(id: "ahead", group: "gpu") { _ in }
            try await a.waitForTicket("ahead", in: cluster)
            let task = try a.queue.submit(id: "task", group: "gpu") { _ in
                await finishTask.wait()
                return 42
            }
            try await a.waitForTicket("task", in: cluster)

            let seen = Recorder<TaskStatus>()
            let reader = Task {
                for await status in b.source.updates(of: "task") { seen.append(status) }
            }
            func latest() -> TaskStatus? { seen.elements.last }
            try await eventually("b sees the task second in line") { latest()?.state.queued?.position == 1 }
            XCTAssertEqual(latest()?.state.queued?.queueSize, 2)
            XCTAssertTrue(try a.queue.cancel("ahead"))
            try await eventually("b sees it first in line") { latest()?.state.queued?.position == 0 }
            finishHolder.open()
            try await eventually("b sees it run") { latest()?.state.running != nil }
            XCTAssertEqual(latest()?.state.running?.slot, 0)
            finishTask.open()
            await reader.value  // the stream ends after the final status
            XCTAssertEqual(latest()?.state.finished?.outcome, .succeeded)
            let versions = seen.elements.map(\.version)
            XCTAssertEqual(versions, versions.sorted())
            XCTAssertEqual(Set(versions).count, versions.count, "versions only grow")
            let json = try JSONEncoder().encode(try XCTUnwrap(latest()))
            XCTAssertEqual(try JSONDecoder().decode(TaskStatus.self, from: json).state, latest()?.state)
            let result = try await task.value
            XCTAssertEqual(result, 42)
            try await holder.value
            _ = try? await ahead.value
        }

        func testTheDatabaseRefusesASecondHolderOfASlot() async throws {
            let cluster = try TestCluster()
            defer { Task { await cluster.stop() } }
            let a = try await cluster.startReplica("a")
            let latch = Gate()
            let holder = try a.queue.submit(id: "holder", group: "gpu") { _ in await latch.wait() }
            try await eventually("holding") { try await cluster.count("slot IS NOT NULL") == 1 }
            let s = cluster.schema
            do {
                try await cluster.sql(
                    """
                    INSERT INTO \(s).cq_ticket (grp, session, slot, fence)
                    SELECT grp, session, slot, 999 FROM \(s).cq_ticket WHERE slot IS NOT NULL
                    """)
                XCTFail("a second holder of slot 0 was committed")
            } catch let error as PSQLError {
                XCTAssertEqual(error.serverInfo?[.sqlState], "23505", "unique violation, got \(error)")
            }
            latch.open()
            try await holder.value
        }

        func testOneLineAcrossReplicasInArrivalOrder() async throws {
            let cluster = try TestCluster()
            defer { Task { await cluster.stop() } }
            let a = try await cluster.startReplica("a")
            let b = try await cluster.startReplica("b")
            let started = Recorder<(String, ClusterPermit?)>()
            let latches = (0..<5).map { _ in Gate() }
            var handles: [JobHandle<Void>] = []
            for index in 0..<5 {
                let replica = index % 2 == 0 ? a : b
                let id = TaskID("job\(index)")
                handles.append(
                    try replica.queue.submit(id: id, group: "gpu") { context in
                        started.append((id.rawValue, context.permit))
                        await latches[index].wait()
                    })
                try await replica.waitForTicket(id, in: cluster)
            }
            // Positions are cluster-wide, on either replica, and from either replica by id.
            try await eventually("job3 on b sees two ahead") {
                (try? b.queue.status(of: "job3"))?.state.queued.map { ($0.position, $0.queueSize) } ?? (0, 0) == (2, 4)
            }
            let remote = try await b.source.status(of: "job2")
            XCTAssertEqual(remote?.state.queued?.position, 1)
            let holder = try await a.source.status(of: "job0")
            XCTAssertEqual(holder?.state.running?.slot, 0)

            for index in 0..<5 {
                latches[index].open()
                try await handles[index].value
            }
            XCTAssertEqual(started.elements.map(\.0), ["job0", "job1", "job2", "job3", "job4"])
            let fences = started.elements.compactMap(\.1?.fence)
            XCTAssertEqual(fences.count, 5)
            XCTAssertEqual(fences, fences.sorted())
            XCTAssertEqual(Set(fences).count, 5)
            try await eventually("all released") { try await cluster.count("true") == 0 }
            let finished = try await a.source.status(of: "job3")
            XCTAssertEqual(finished?.state.finished?.outcome, .succeeded, "finished status from the other replica")
        }

        func testCancelByIdFromAnotherReplica() async throws {
            let cluster = try TestCluster()
            defer { Task { await cluster.stop() } }
            let a = try await cluster.startReplica("a")
            let b = try await cluster.startReplica("b")
            let running = try a.queue.submit(id: "running", group: "gpu") { _ in
                try await Task.sleep(for: .seconds(3600))
            }
            try await eventually("running") { (try? a.queue.status(of: "running"))?.state.running != nil }
            let waiting = try a.queue.submit(id: "waiting", group: "gpu") { _ in XCTFail("a cancelled call ran") }
            try await a.waitForTicket("waiting", in: cluster)

            let foundWaiting = try await b.source.cancel("waiting")
            XCTAssertTrue(foundWaiting)
            do {
                try await waiting.value
                XCTFail("not cancelled")
            } catch is CancellationError {}
            let foundRunning = try await b.source.cancel("running")
            XCTAssertTrue(foundRunning)
            do {
                try await running.value
                XCTFail("not cancelled")
            } catch is CancellationError {}
            let foundNobody = try await b.source.cancel("nobody")
            XCTAssertFalse(foundNobody)
            try await eventually("tickets given back") { try await cluster.count("true") == 0 }
        }

        func testLoweredSlotsAreHonoured() async throws {
            let cluster = try TestCluster(slots: ["gpu": 2])
            defer { Task { await cluster.stop() } }
            let a = try await cluster.startReplica("a")
            let latches = (0..<4).map { _ in Gate() }
            let holders = HolderCounter()
            var handles: [JobHandle<Void>] = []
            for index in 0..<4 {
                handles.append(
                    try a.queue.submit(id: TaskID("j\(index)"), group: "gpu") { _ in
                        holders.enter()
                        defer { holders.leave() }
                        await latches[index].wait()
                    })
                try await a.waitForTicket(TaskID("j\(index)"), in: cluster)
            }
            try await eventually("two hold") { try await cluster.count("slot IS NOT NULL") == 2 }
            try await cluster.sql("SELECT \(cluster.schema).cq_configure('gpu', 1)")
            latches[0].open()
            try await handles[0].value
            try await eventually("j0 released") { try await cluster.count("task = 'j0'") == 0 }
            // One slot now: j1 still holds, so j2 must not be granted.
            try await Task.sleep(for: .milliseconds(200))
            let holding = try await cluster.count("slot IS NOT NULL")
            XCTAssertEqual(holding, 1)
            for index in 1..<4 {
                latches[index].open()
                try await handles[index].value
            }
            XCTAssertEqual(holders.most, 2)
        }

        func testUnknownGroupAndUnreachableDatabaseGiveTypedErrors() async throws {
            let cluster = try TestCluster()
            defer { Task { await cluster.stop() } }
            let cluster2 = try TestCluster(slots: ["gpu": 1, "tts": 1])
            defer { Task { await cluster2.stop() } }
            let a = try await cluster2.startReplica("a")
            // The database forgot a group this replica serves (dropped by hand): a typed error, not a hang.
            try await cluster2.sql("DELETE FROM \(cluster2.schema).cq_group WHERE name = 'tts'")
            let orphan = try a.queue.submit(id: "orphan", group: "tts") { _ in XCTFail("ran in an unknown group") }
            do {
                try await orphan.value
                XCTFail("ran")
            } catch let error as CallQueueError {
                XCTAssertEqual(error.code, .unknownGroup, "\(error)")
            }

            var configuration = cluster.configuration("nowhere")
            configuration.startTimeout = .milliseconds(300)
            let settings = try PostgresPermitSource.connectionSettings(url: "postgres://cq@127.0.0.1:1/none")
            let client = PostgresClient(configuration: settings.client, backgroundLogger: testLogger)
            let source = PostgresPermitSource(
                client: client, listenerConfiguration: settings.listener, configuration: configuration,
                logger: testLogger)
            let queue = try CallQueue(
                configuration: .init(groups: ["gpu": .init(limit: 1)], permitSources: ["gpu": source]))
            let running = Task {
                await withTaskGroup(of: Void.self) { group in
                    group.addTask { await client.run() }
                    group.addTask { try? await source.run() }
                    await group.next()
                    group.cancelAll()
                }
            }
            let handle = try queue.submit(id: "x", group: "gpu") { _ in XCTFail("ran without a database") }
            do {
                try await handle.value
                XCTFail("ran")
            } catch let error as CallQueueError {
                XCTAssertEqual(error.code, .unavailable, "\(error)")
            }
            running.cancel()
            await running.value
        }
    }
#endif
