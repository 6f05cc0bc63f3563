// P1: cluster-wide groups on PostgreSQL beside the in-process group, in one run.
//
//   swift run -c release --package-path Benchmarks --traits Postgres ClusterBenchmarks postgres://user@host:port/db
//
// Workloads (each on a fresh schema):
// - cycle: one caller, acquire + release (`runQueued` with an empty body), p50/p99;
// - hand-off: 8 callers on 2 replicas, one slot, a 1 ms hold; the time from one call's end to the next call's
//   start when the next runs on the other replica, p50/p99;
// - throughput: cycles per second with 8 callers on 2 replicas, on one group, and on 8 groups (one caller each);
// - crash: a replica session that holds the slot and stops renewing (lease 2 s, reaper 0.5 s); the time from its
//   last renewal to the next caller's start;
// - a long line: with 10 and with 10,000 tickets waiting in the group, an enqueue at the end of the line (and its
//   leave), and a hand-off (the holder leaves, the head of the line is granted), through the schema's functions;
// - P2: a reader on replica B following a task of replica A (`updates(of:)`); the time from the task's start on
//   A to B reading it running.
import CallQueue
import Foundation

#if Postgres
    import CallQueuePostgres
    import Logging
    import PostgresNIO

    @main
    enum ClusterBenchmarks {
        static func main() async throws {
            guard
                let url = CommandLine.arguments.dropFirst().first
                    ?? ProcessInfo.processInfo.environment["CQ_POSTGRES_URL"]
            else {
                print("usage: ClusterBenchmarks postgres://user@host:port/db (or CQ_POSTGRES_URL)")
                exit(2)
            }
            print("| workload | in-process group | cluster-wide group (PostgreSQL) |")
            print("|---|---|---|")
            try await cycle(url)
            try await handOff(url)
            try await throughput(url, groups: 1)
            try await throughput(url, groups: 8)
            try await crash(url)
            try await longLine(url)
            try await remoteUpdates(url)
        }

        static func longLine(_ url: String) async throws {
            var enqueue: [Int: [Duration]] = [:]
            var handOff: [Int: [Duration]] = [:]
            for waiting in [10, 10_000] {
                (enqueue[waiting], handOff[waiting]) = try await withReplicas(url, count: 1, groups: ["gpu": 1]) {
                    replicas in
                    let replica = replicas[0]
                    let s = replica.schema
                    @Sendable func sql(_ text: String) async throws -> [PostgresRow] {
                        try await replica.client.query(PostgresQuery(unsafeSQL: text), logger: replica.logger)
                            .collect()
                    }
                    let session = UUID()
                    _ = try await sql(
                        "INSERT INTO \(s).cq_session VALUES ('\(session)', 'line', now() + interval '1 hour')")
                    @Sendable func enqueueOne() async throws -> Int64 {
                        try await sql(
                            "SELECT ticket FROM \(s).cq_enqueue('gpu', '\(session)', NULL, interval '30 seconds', 0)")[
                                0
                            ]
                            .decode(Int64.self)
                    }
                    @Sendable func leave(_ ticket: Int64) async throws {
                        _ = try await sql(
                            "SELECT \(s).cq_leave(\(ticket), '\(session)', NULL, false, interval '30 seconds')")
                    }
                    var holder = try await enqueueOne()  // granted: the line forms behind it
                    var line: [Int64] = []
                    for _ in 0..<waiting { line.append(try await enqueueOne()) }
                    var enqueueTimes: [Duration] = []
                    for _ in 0..<1_000 {
                        let start = ContinuousClock.now
                        let ticket = try await enqueueOne()
                        enqueueTimes.append(.now - start)
                        try await leave(ticket)
                    }
                    var handOffTimes: [Duration] = []
                    for _ in 0..<1_000 {
                        line.append(try await enqueueOne())  // the line keeps its length
                        let start = ContinuousClock.now
                        try await leave(holder)
                        handOffTimes.append(.now - start)
                        holder = line.removeFirst()
                    }
                    return (enqueueTimes, handOffTimes)
                }
            }
            row2("enqueue at the end of the line (one round trip), 10 / 10,000 waiting", enqueue[10]!, enqueue[10_000]!)
            row2(
                "hand-off: the holder leaves, the head is granted, 10 / 10,000 waiting", handOff[10]!, handOff[10_000]!)
        }

        static func remoteUpdates(_ url: String) async throws {
            let (latencies, readFirst) = try await withReplicas(url, count: 2, groups: ["gpu": 1]) {
                replicas -> ([Duration], Int) in
                var latencies: [Duration] = []
                var readFirst = 0
                for index in 0..<200 {
                    let id = TaskID("p2-\(index)")
                    let release = Gate()
                    let holding = Gate()
                    let holder = Task {
                        try await replicas[0].queue.runQueued(group: "gpu") {
                            holding.open()
                            await release.wait()
                        }
                    }
                    await holding.wait()
                    let started = Stamp()
                    let updates = replicas[1].source.updates(of: id)
                    let reader = Task { () -> ContinuousClock.Instant? in
                        // Running, or finished already: either way B has learnt that it started.
                        for await status in updates where status.state.queued == nil { return .now }
                        return nil
                    }
                    let task = try replicas[0].queue.submit(id: id, group: "gpu") { _ in started.set(.now) }
                    // It waits in the database behind the holder; the holder's release starts it.
                    while try await replicas[1].source.status(of: id)?.state.queued == nil {
                        try await Task.sleep(for: .milliseconds(1))
                    }
                    release.open()
                    try await holder.value
                    try await task.value
                    guard let read = await reader.value, let start = started.value else { continue }
                    if read < start { readFirst += 1 }
                    latencies.append(max(.zero, read - start))
                }
                return (latencies, readFirst)
            }
            row2(
                "P2: start on replica A to the reader on replica B (B read it first in \(readFirst) of 200)", latencies,
                nil)
        }

        static func cycle(_ url: String) async throws {
            let local = try CallQueue(configuration: .init(groups: ["gpu": .init(limit: 1)]))
            var localTimes: [Duration] = []
            for _ in 0..<20_000 {
                let start = ContinuousClock.now
                try await local.runQueued(group: "gpu") {}
                localTimes.append(.now - start)
            }
            let times = try await withReplicas(url, count: 1, groups: ["gpu": 1]) { replicas in
                var times: [Duration] = []
                for _ in 0..<2_000 {
                    let start = ContinuousClock.now
                    try await replicas[0].queue.runQueued(group: "gpu") {}
                    times.append(.now - start)
                }
                return times
            }
            row("acquire + release, 1 caller: p50 / p99", localTimes, times)
        }

        static func handOff(_ url: String) async throws {
            // In process: 8 callers on one queue; every hand-off counts.
            let local = try CallQueue(configuration: .init(groups: ["gpu": .init(limit: 1)]))
            let localGaps = try await gaps(queues: [local], callers: 8, calls: 2_000)
            let clusterGaps = try await withReplicas(url, count: 2, groups: ["gpu": 1]) { replicas in
                try await gaps(queues: replicas.map(\.queue), callers: 8, calls: 1_000)
            }
            row(
                "release to the next start (cluster: on the other replica), 8 callers: p50 / p99", localGaps,
                clusterGaps)
        }

        /// Runs `calls` calls from `callers` callers spread over `queues`; returns the gaps between one call's
        /// end and the next call's start where the two ran on different queues (or all gaps with one queue).
        static func gaps(queues: [CallQueue], callers: Int, calls: Int) async throws -> [Duration] {
            let log = Log()
            try await withThrowingTaskGroup(of: Void.self) { group in
                for caller in 0..<callers {
                    let queueIndex = caller % queues.count
                    group.addTask {
                        for _ in 0..<(calls / callers) {
                            try await queues[queueIndex].runQueued(group: "gpu") {
                                let start = ContinuousClock.now
                                try? await Task.sleep(for: .milliseconds(1))
                                log.add(queue: queueIndex, start: start, end: .now)
                            }
                        }
                    }
                }
                try await group.waitForAll()
            }
            let runs = log.runs.sorted { $0.start < $1.start }
            return zip(runs, runs.dropFirst()).compactMap { before, after in
                queues.count == 1 || before.queue != after.queue ? after.start - before.end : nil
            }
        }

        static func throughput(_ url: String, groups count: Int) async throws {
            let names = (0..<count).map { ConcurrencyGroupID("g\($0)") }
            let window = Duration.seconds(3)
            @Sendable func drive(_ queues: [CallQueue]) async throws -> Double {
                let counter = Counter()
                let end = ContinuousClock.now + window
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for caller in 0..<8 {
                        group.addTask {
                            let queue = queues[caller % queues.count]
                            let name = names[caller % names.count]
                            while ContinuousClock.now < end {
                                try await queue.runQueued(group: name) {}
                                counter.add()
                            }
                        }
                    }
                    try await group.waitForAll()
                }
                return Double(counter.value) / window.seconds
            }
            let local = try CallQueue(
                configuration: .init(groups: Dictionary(uniqueKeysWithValues: names.map { ($0, .init(limit: 1)) })))
            let localRate = try await drive([local])
            let clusterRate = try await withReplicas(
                url, count: 2, groups: Dictionary(uniqueKeysWithValues: names.map { ($0, 1) })
            ) { replicas in
                try await drive(replicas.map(\.queue))
            }
            print(
                "| cycles per second, 8 callers, \(count == 1 ? "one group" : "\(count) groups") (cluster: 2 replicas) "
                    + "| \(Int(localRate)) | \(Int(clusterRate)) |")
        }

        static func crash(_ url: String) async throws {
            var samples: [Duration] = []
            for _ in 0..<3 {
                let sample = try await withReplicas(url, count: 1, groups: ["gpu": 1], lease: .seconds(2)) {
                    replicas -> Duration in
                    let replica = replicas[0]
                    let schema = replica.schema
                    // A replica that holds the slot and dies: its session was renewed once, then never again.
                    let rows = try await replica.client.query(
                        """
                        WITH s AS (INSERT INTO \(unescaped: schema).cq_session
                                   VALUES (gen_random_uuid(), 'crashed', now() + interval '2 seconds') RETURNING id)
                        SELECT (\(unescaped: schema).cq_enqueue('gpu', (SELECT id FROM s), 'crashed',
                                interval '30 seconds')).slot
                        """, logger: replica.logger)
                    let renewed = ContinuousClock.now
                    for try await _ in rows.decode(Int32?.self) {}
                    // It holds the slot once the warm-up call's release has landed.
                    while true {
                        let held = try await replica.client.query(
                            "SELECT count(*) FROM \(unescaped: schema).cq_ticket WHERE task = 'crashed' AND slot = 0",
                            logger: replica.logger)
                        var count: Int64 = 0
                        for try await value in held.decode(Int64.self) { count = value }
                        if count == 1 { break }
                        try await Task.sleep(for: .milliseconds(1))
                    }
                    let started: ContinuousClock.Instant = try await replica.queue.runQueued(group: "gpu") { .now }
                    return started - renewed
                }
                samples.append(sample)
            }
            let text = samples.map { String(format: "%.2f s", $0.seconds) }.joined(separator: ", ")
            print("| a crashed replica's slot back after its last renewal (lease 2 s, reaper 0.5 s) | – | \(text) |")
        }

        // MARK: Replicas

        struct Replica {
            let queue: CallQueue
            let source: PostgresPermitSource
            let client: PostgresClient
            let schema: String
            let logger: Logger
        }

        /// Runs `body` with `count` replicas (each its own pool, listener, session and queue) on a fresh schema.
        static func withReplicas<T: Sendable>(
            _ url: String, count: Int, groups: [ConcurrencyGroupID: Int], lease: Duration = .seconds(15),
            _ body: @Sendable ([Replica]) async throws -> T
        ) async throws -> T {
            var logger = Logger(label: "cluster-benchmarks")
            logger.logLevel = .error
            let schema = "bench_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(12)
            let settings = try PostgresPermitSource.connectionSettings(url: url)
            var replicas: [Replica] = []
            var services: [Task<Void, Never>] = []
            for index in 0..<count {
                let client = PostgresClient(configuration: settings.client, backgroundLogger: logger)
                let source = PostgresPermitSource(
                    client: client, listenerConfiguration: settings.listener,
                    configuration: .init(
                        replica: "r\(index)", groups: groups, schema: schema, lease: lease, heartbeat: lease / 5,
                        reaperInterval: .milliseconds(500), safetyMargin: lease / 4),
                    logger: logger)
                services.append(
                    Task {
                        await withTaskGroup(of: Void.self) { group in
                            group.addTask { await client.run() }
                            group.addTask { try? await source.run() }
                            await group.next()
                            group.cancelAll()
                        }
                    })
                let queue = try CallQueue(
                    configuration: .init(
                        groups: groups.mapValues { .init(limit: .limited($0)) },
                        permitSources: groups.mapValues { _ in source }))
                replicas.append(
                    Replica(queue: queue, source: source, client: client, schema: schema, logger: logger))
                // Warm up: the first call waits for the session and prepares the schema.
                try await queue.runQueued(group: groups.keys.first!) {}
            }
            let result = try await body(replicas)
            _ = try? await replicas[0].client.query("DROP SCHEMA \(unescaped: schema) CASCADE", logger: logger)
            for service in services { service.cancel() }
            for service in services { await service.value }
            return result
        }

        // MARK: Reporting

        /// A row of two cluster figures (or one).
        static func row2(_ name: String, _ first: [Duration], _ second: [Duration]?) {
            print("| \(name) | – | \(quantiles(first))\(second.map { " · " + quantiles($0) } ?? "") |")
        }

        static func quantiles(_ samples: [Duration]) -> String {
            let sorted = samples.sorted()
            guard !sorted.isEmpty else { return "–" }
            func at(_ q: Double) -> String {
                let value = sorted[min(sorted.count - 1, Int(Double(sorted.count) * q))]
                return value < .milliseconds(1)
                    ? String(format: "%.1f µs", value.seconds * 1e6) : String(format: "%.2f ms", value.seconds * 1e3)
            }
            return "\(at(0.5)) / \(at(0.99))"
        }

        static func row(_ name: String, _ local: [Duration], _ cluster: [Duration]) {
            print("| \(name) | \(quantiles(local)) | \(quantiles(cluster)) |")
        }
    }

    final class Log: @unchecked Sendable {
        struct Run {
            var queue: Int
            var start: ContinuousClock.Instant
            var end: ContinuousClock.Instant
        }
        private let lock = NSLock()
        private var stored: [Run] = []
        func add(queue: Int, start: ContinuousClock.Instant, end: ContinuousClock.Instant) {
            lock.withLock { stored.append(Run(queue: queue, start: start, end: end)) }
        }
        var runs: [Run] { lock.withLock { stored } }
    }

    final class Stamp: @unchecked Sendable {
        private let lock = NSLock()
        private var stored: ContinuousClock.Instant?
        func set(_ instant: ContinuousClock.Instant) { lock.withLock { stored = instant } }
        var value: ContinuousClock.Instant? { lock.withLock { stored } }
    }

    /// Opens once; waiters before and after go on.
    final class Gate: @unchecked Sendable {
        private let lock = NSLock()
        private var isOpen = false
        private var waiters: [CheckedContinuation<Void, Never>] = []
        func open() {
            let waiting = lock.withLock {
                isOpen = true
                defer { waiters = [] }
                return waiters
            }
            for waiter in waiting { waiter.resume() }
        }
        func wait() async {
            await withCheckedContinuation { continuation in
                let now = lock.withLock {
                    if isOpen { return true }
                    waiters.append(continuation)
                    return false
                }
                if now { continuation.resume() }
            }
        }
    }

    final class Counter: @unchecked Sendable {
        private let lock = NSLock()
        private var count = 0
        func add() { lock.withLock { count += 1 } }
        var value: Int { lock.withLock { count } }
    }

    extension Duration {
        var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
    }
#else
    @main
    enum ClusterBenchmarks {
        static func main() {
            print(
                "ClusterBenchmarks needs the Postgres trait: "
                    + "swift run -c release --package-path Benchmarks --traits Postgres ClusterBenchmarks URL")
        }
    }
#endif
