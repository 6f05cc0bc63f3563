#if Postgres
    import CallQueue
    import Foundation
    import Logging
    import NIOConcurrencyHelpers
    import PostgresNIO
    import ServiceLifecycle
    import XCTest

    @testable import CallQueuePostgres
    import CallQueueTestSupport

    /// The URL of the PostgreSQL server the tests use (`.ci/postgres.sh` starts one); the tests skip without it.
    func postgresURL() throws -> String {
        guard let url = ProcessInfo.processInfo.environment["CQ_POSTGRES_URL"], !url.isEmpty else {
            throw XCTSkip(
                "CQ_POSTGRES_URL is not set: the PostgreSQL tests need a server (`source .ci/postgres.sh && "
                    + "postgres_start`, as .ci/run does)")
        }
        return url
    }

    let testLogger: Logger = {
        var logger = Logger(label: "call-queue-postgres-tests")
        logger.logLevel =
            ProcessInfo.processInfo.environment["CQ_TEST_LOG"].flatMap { Logger.Level(rawValue: $0) } ?? .critical
        return logger
    }()

    /// One database schema for one test, and the replicas that share it: each with its own pool, listener,
    /// session and ``CallQueue``, running until the test stops it.
    final class TestCluster: @unchecked Sendable {
        let url: String
        let schema: String
        let slots: [ConcurrencyGroupID: Int]
        let lease: Duration
        private(set) var replicas: [TestReplica] = []
        let admin: PostgresClient
        private let adminTask: Task<Void, Never>

        init(slots: [ConcurrencyGroupID: Int] = ["gpu": 1], lease: Duration = .seconds(2)) throws {
            url = try postgresURL()
            schema = "t_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(20)
            self.slots = slots
            self.lease = lease
            let settings = try PostgresPermitSource.connectionSettings(url: url)
            admin = PostgresClient(configuration: settings.client, backgroundLogger: testLogger)
            adminTask = Task { [admin] in await admin.run() }
        }

        func configuration(_ name: String) -> PostgresPermitSource.Configuration {
            PostgresPermitSource.Configuration(
                replica: name, groups: slots, schema: schema, lease: lease, heartbeat: lease / 5,
                reaperInterval: .milliseconds(500), safetyMargin: lease / 4, restartGrace: .seconds(30),
                positionRefreshInterval: .milliseconds(20), startTimeout: .seconds(20))
        }

        /// Starts a replica and waits until its session is open.
        @discardableResult
        func startReplica(
            _ name: String, runsAs mode: TestReplica.Mode = .taskGroup,
            configure: (inout PostgresPermitSource.Configuration) -> Void = { _ in }
        ) async throws -> TestReplica {
            var configuration = configuration(name)
            configure(&configuration)
            let replica = try TestReplica(url: url, configuration: configuration, limits: slots, mode: mode)
            replicas.append(replica)
            _ = try await replica.source.openSession()
            return replica
        }

        /// Runs SQL as an administrator (not through any replica).
        @discardableResult
        func sql(_ text: String) async throws -> [PostgresRow] {
            var rows: [PostgresRow] = []
            for try await row in try await admin.query(PostgresQuery(unsafeSQL: text), logger: testLogger) {
                rows.append(row)
            }
            return rows
        }

        func count(_ condition: String) async throws -> Int {
            let rows = try await sql("SELECT count(*) FROM \(schema).cq_ticket WHERE \(condition)")
            return Int(try rows[0].decode(Int64.self))
        }

        func stop() async {
            for replica in replicas { await replica.stop() }
            _ = try? await sql("DROP SCHEMA IF EXISTS \(schema) CASCADE")
            adminTask.cancel()
        }
    }

    final class TestReplica: Sendable {
        /// How the replica runs its pool and source.
        enum Mode {
            /// Both in a task group, with the URL helper's settings; stopped by cancellation.
            case taskGroup
            /// In a `ServiceGroup`, the client listed first, as the guide says; stopped by a graceful shutdown.
            case serviceGroup
            /// In a task group, with connection settings that set no timeouts (as a user who builds them for TLS).
            case plainSettings
        }

        let name: String
        let source: PostgresPermitSource
        let queue: CallQueue
        private let task: Task<Void, any Error>
        private let serviceGroup: ServiceGroup?

        init(
            url: String, configuration: PostgresPermitSource.Configuration, limits: [ConcurrencyGroupID: Int],
            mode: Mode = .taskGroup
        ) throws {
            name = configuration.replica
            var settings = try PostgresPermitSource.connectionSettings(url: url)
            if mode == .plainSettings {
                settings.client.options.additionalStartupParameters = []
                settings.listener.options.additionalStartupParameters = []
            }
            let client = PostgresClient(configuration: settings.client, backgroundLogger: testLogger)
            let source = PostgresPermitSource(
                client: client, listenerConfiguration: settings.listener, configuration: configuration,
                logger: testLogger)
            self.source = source
            var groups: [ConcurrencyGroupID: ConcurrencyGroupConfiguration] = [:]
            for (group, slots) in limits { groups[group] = .init(limit: .limited(slots)) }
            queue = try CallQueue(
                configuration: .init(
                    groups: groups, positionUpdateInterval: .zero,
                    permitSources: Dictionary(uniqueKeysWithValues: limits.keys.map { ($0, source) })))
            if mode == .serviceGroup {
                let serviceGroup = ServiceGroup(services: [client, source], logger: testLogger)
                self.serviceGroup = serviceGroup
                task = Task { try await serviceGroup.run() }
            } else {
                serviceGroup = nil
                task = Task {
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        group.addTask { await client.run() }
                        group.addTask { try await source.run() }
                        try await group.next()
                        group.cancelAll()
                    }
                }
            }
        }

        /// Stops the replica: its session ends and its slots go on at once.
        func stop() async {
            queue.close()
            task.cancel()
            _ = await task.result
        }

        /// Shuts a ``Mode/serviceGroup`` replica down gracefully and waits until its group has stopped.
        func shutDownGracefully() async throws {
            await serviceGroup?.triggerGracefulShutdown()
            try await task.value
        }

        func loseNextEnqueueReply() {
            source.state.withLockedValue { $0.losesNextEnqueueReply = true }
        }

        /// The session this replica uses now, once it is open.
        var openSession: UUID? {
            source.state.withLockedValue { $0.isOpen ? $0.session : nil }
        }

        /// The replica stops talking to the database (renewing its lease, reaping, giving tickets back), as
        /// a hung or partitioned process would; its running calls go on until its lease watch stops them.
        func freeze() {
            source.state.withLockedValue {
                $0.heartbeatsPaused = true
                $0.reaperPaused = true
                $0.leavesPaused = true
            }
        }

        func loseNextRelease() {
            source.state.withLockedValue { $0.losesNextRelease = true }
        }

        func missGrantNotifications() {
            source.state.withLockedValue { $0.ignoresGrantNotifications = true }
        }

        /// The replica's next enqueues await `hook` between their ticket's commit and its registration here.
        func beforeRegistering(_ hook: (@Sendable () async -> Void)?) {
            source.state.withLockedValue { $0.beforeRegistering = hook }
        }

        /// Waits until the task holds a ticket in the database (its place in the cluster-wide line is taken).
        func waitForTicket(_ id: TaskID, in cluster: TestCluster) async throws {
            try await eventually("\(id) has a ticket") {
                // Or it has had one: granted already, or finished.
                if (try? queue.status(of: id))?.state.queued == nil { return true }
                return try await cluster.count("task = '\(id.rawValue)'") == 1
            }
        }
    }

    /// Two replicas of a one-slot group: "holder" on a holds the slot until released, "next" on b waits with its
    /// ticket taken. The fault tests break something in between.
    struct HeldSlot {
        let cluster: TestCluster
        let a: TestReplica
        let b: TestReplica
        private let release = Gate()
        private let holder: JobHandle<Void>
        private let next: JobHandle<ClusterPermit?>

        static func start() async throws -> HeldSlot {
            let cluster = try TestCluster()
            let a = try await cluster.startReplica("a")
            let b = try await cluster.startReplica("b")
            return try await HeldSlot(cluster: cluster, a: a, b: b)
        }

        private init(cluster: TestCluster, a: TestReplica, b: TestReplica) async throws {
            self.cluster = cluster
            self.a = a
            self.b = b
            let release = release
            holder = try a.queue.submit(id: "holder", group: "gpu") { _ in await release.wait() }
            try await eventually("holding") { try await cluster.count("slot IS NOT NULL") == 1 }
            next = try b.queue.submit(id: "next", group: "gpu") { context in context.permit }
            try await b.waitForTicket("next", in: cluster)
        }

        /// Lets the holder finish; returns the permit the waiting call ran with.
        func releaseAndGrantNext() async throws -> ClusterPermit? {
            release.open()
            try await holder.value
            return try await next.value
        }
    }

    /// The job's value once it has finished. A job that does not finish within `eventually`'s bound fails the
    /// test and is cancelled, so a missing outcome fails rather than hangs the suite.
    func value<Output>(
        of handle: JobHandle<Output>, _ what: String, file: StaticString = #filePath, line: UInt = #line
    ) async throws -> Output {
        try await eventually(what, file: file, line: line) { (try? handle.status())?.state.finished != nil }
        if (try? handle.status())?.state.finished == nil { _ = handle.cancel() }
        return try await handle.value
    }

    /// Polls `condition` until it holds; fails after a generous bound, which no test measures.
    func eventually(
        _ what: String, file: StaticString = #filePath, line: UInt = #line,
        _ condition: () async throws -> Bool
    ) async throws {
        let giveUp = ContinuousClock.now + .seconds(60)
        while try await !condition() {
            if ContinuousClock.now > giveUp {
                XCTFail("gave up waiting for \(what)", file: file, line: line)
                return
            }
            try await Task.sleep(for: .milliseconds(5))
        }
    }
#endif
