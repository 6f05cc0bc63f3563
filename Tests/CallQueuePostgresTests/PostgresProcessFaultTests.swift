#if Postgres
    import CallQueue
    import Foundation
    import NIOConcurrencyHelpers
    import XCTest

    @testable import CallQueuePostgres
    import CallQueueTestSupport

    /// Faults where a process is the point: a replica process (`CallQueueReplicaFixture`) killed, paused past its
    /// lease, or sent SIGTERM while it holds the slot of a one-slot group, and a replica in this process waiting
    /// behind it. Every caller gets exactly one outcome and no ticket is left behind.
    final class PostgresProcessFaultTests: XCTestCase {
        /// SIGTERM with a two-minute lease: the process's waiting call leaves with `closed`, its running call is
        /// stopped after the one-second grace period, the process exits 0, and the waiter here gets the slot at
        /// once: well before the lease would have run out.
        func testSIGTERMHandsTheSlotOnWithoutWaitingOutTheLease() async throws {
            let cluster = try TestCluster(lease: .seconds(120))
            defer { Task { await cluster.stop() } }
            let b = try await cluster.startReplica("b")
            let a = try ReplicaProcess(cluster: cluster, name: "a", lease: 120, grace: 1, calls: "h:hold,w:quick")
            defer { a.kill() }
            let started = try await a.line(startingWith: "started h")
            let holderFence = try XCTUnwrap(Int64(started.split(separator: " ")[3]))
            try await eventually("a's waiting call has its ticket") { try await cluster.count("task = 'w'") == 1 }
            let ran = Recorder<Int64>()
            let other = try b.queue.submit(id: "other", group: "gpu") { context in
                ran.append(context.permit?.fence ?? -1)
            }
            try await b.waitForTicket("other", in: cluster)

            let signalled = ContinuousClock.now
            a.signal(SIGTERM)
            try await eventually("the waiter here ran (the lease is 120 s)") { !ran.elements.isEmpty }
            let handedOver = ContinuousClock.now - signalled
            try await other.value
            XCTAssertGreaterThan(ran.elements.first ?? 0, holderFence)
            _ = try await a.line(startingWith: "exit")
            let status = try await a.exitStatus()
            XCTAssertEqual(status, 0)
            XCTAssertEqual(a.lines(startingWith: "outcome w"), ["outcome w closed"])
            XCTAssertEqual(a.lines(startingWith: "outcome h"), ["outcome h closed"])
            XCTAssertEqual(a.lines(startingWith: "started w"), [], "the waiting call did not run")
            try await eventually("no ticket left") { try await cluster.count("true") == 0 }
            print("SIGTERM: the slot was handed over \(handedOver) after the signal (grace 1 s, lease 120 s)")
        }

        /// SIGKILL: nothing ends the session, so the slot comes back when the lease runs out and a reaper runs
        /// (lease 2 s, reaper 0.5 s); the next grant has a larger fence, and the database never had two holders.
        func testSIGKILLReturnsTheSlotAfterTheLease() async throws {
            let cluster = try TestCluster()
            defer { Task { await cluster.stop() } }
            let b = try await cluster.startReplica("b")
            let a = try ReplicaProcess(cluster: cluster, name: "a", lease: 2, grace: 1, calls: "h:hold")
            defer { a.kill() }
            let started = try await a.line(startingWith: "started h")
            let holderFence = try XCTUnwrap(Int64(started.split(separator: " ")[3]))
            let ran = Recorder<Int64>()
            let other = try b.queue.submit(id: "other", group: "gpu") { context in
                ran.append(context.permit?.fence ?? -1)
            }
            try await b.waitForTicket("other", in: cluster)

            let killed = ContinuousClock.now
            a.signal(SIGKILL)
            var mostHolders = 0
            try await eventually("the slot came back") {
                mostHolders = max(mostHolders, try await cluster.count("slot IS NOT NULL"))
                return !ran.elements.isEmpty
            }
            let returned = ContinuousClock.now - killed
            try await other.value
            XCTAssertEqual(ran.elements.count, 1, "one outcome")
            XCTAssertGreaterThan(ran.elements[0], holderFence)
            XCTAssertLessThanOrEqual(mostHolders, 1)
            XCTAssertEqual(a.lines(startingWith: "outcome"), [], "a killed process reports nothing")
            try await eventually("no ticket left") { try await cluster.count("true") == 0 }
            print("SIGKILL: the slot came back \(returned) after the kill (lease 2 s, reaper 0.5 s)")
        }

        /// SIGSTOP past the lease, then SIGCONT: the slot goes on with a larger fence while the process is paused;
        /// when it resumes, its call is stopped with `leaseLost`, and the write it makes after that is refused by
        /// the worker, which checks fences.
        func testSIGSTOPPastTheLeaseIsStoppedAndFencedOut() async throws {
            let cluster = try TestCluster()
            defer { Task { await cluster.stop() } }
            let b = try await cluster.startReplica("b")  // makes the schema
            try await cluster.sql(
                "CREATE TABLE \(cluster.schema).worker (id int PRIMARY KEY, fence bigint NOT NULL, writer text)")
            try await cluster.sql("INSERT INTO \(cluster.schema).worker VALUES (0, 0, '')")
            let a = try ReplicaProcess(cluster: cluster, name: "a", lease: 2, grace: 1, calls: "h:fenced")
            defer { a.kill() }
            let write = try await a.line(startingWith: "write h")
            XCTAssertTrue(write.hasSuffix("accepted"), write)
            let ran = Recorder<Int64>()
            let other = try b.queue.submit(id: "other", group: "gpu") { context in
                let fence = context.permit?.fence ?? -1
                let rows = try await cluster.sql(
                    """
                    UPDATE \(cluster.schema).worker SET fence = \(fence), writer = 'b'
                    WHERE id = 0 AND fence <= \(fence) RETURNING fence
                    """)
                XCTAssertEqual(rows.count, 1, "the new holder's write is accepted")
                ran.append(fence)
            }
            try await b.waitForTicket("other", in: cluster)

            a.signal(SIGSTOP)
            try await eventually("the slot went on while a was paused") { !ran.elements.isEmpty }
            try await other.value
            let writesBefore = a.lines(startingWith: "write h").count
            a.signal(SIGCONT)
            _ = try await a.line(startingWith: "outcome h")
            XCTAssertEqual(a.lines(startingWith: "outcome h"), ["outcome h leaseLost"])
            // Its last write came after it was stopped: refused. (A write sent just before the pause may still be
            // reported after it, accepted: it reached the worker before the new holder's.)
            let afterResume = a.lines(startingWith: "write h").dropFirst(writesBefore)
            XCTAssertTrue(afterResume.last?.hasSuffix("refused") ?? false, "\(afterResume)")
            let worker = try await cluster.sql("SELECT fence, writer FROM \(cluster.schema).worker")
            XCTAssertEqual(try worker[0].decode(Int64.self, context: .default), ran.elements[0])
            a.signal(SIGTERM)
            let status = try await a.exitStatus()
            XCTAssertEqual(status, 0)
            try await eventually("no ticket left") { try await cluster.count("true") == 0 }
        }
    }

    /// A `CallQueueReplicaFixture` process against the cluster's schema: its output lines, signals, exit status.
    final class ReplicaProcess: Sendable {
        private let process: Process
        private let output = Recorder<String>()

        init(cluster: TestCluster, name: String, lease: Double, grace: Double, calls: String) throws {
            let directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
            let candidates = [directory, directory.deletingLastPathComponent()].map {
                $0.appendingPathComponent("CallQueueReplicaFixture")
            }
            guard let executable = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0.path) })
            else {
                throw XCTSkip("CallQueueReplicaFixture is not built beside the tests (swift build --build-tests)")
            }
            process = Process()
            process.executableURL = executable
            process.arguments = [
                "url=\(cluster.url)", "schema=\(cluster.schema)", "replica=\(name)", "lease=\(lease)",
                "grace=\(grace)", "calls=\(calls)",
            ]
            let pipe = Pipe()
            process.standardOutput = pipe
            let output = output
            let partial = NIOLockedValueBox<[UInt8]>([])
            pipe.fileHandleForReading.readabilityHandler = { handle in
                let data = handle.availableData
                if data.isEmpty { handle.readabilityHandler = nil }
                let complete = partial.withLockedValue { partial -> [String] in
                    var lines: [String] = []
                    for byte in data {
                        if byte == UInt8(ascii: "\n") {
                            lines.append(String(decoding: partial, as: UTF8.self))
                            partial = []
                        } else {
                            partial.append(byte)
                        }
                    }
                    return lines
                }
                for line in complete { output.append(line) }
            }
            try process.run()
        }

        var pid: Int32 { process.processIdentifier }

        func signal(_ signal: Int32) { _ = Foundation.kill(pid, signal) }

        /// Kills the process if it still runs (a test that failed half-way leaves nothing behind).
        func kill() {
            if process.isRunning { signal(SIGKILL) }
        }

        func lines(startingWith prefix: String) -> [String] {
            output.elements.filter { $0.hasPrefix(prefix) }
        }

        /// Waits for the first output line with the prefix.
        func line(
            startingWith prefix: String, file: StaticString = #filePath, line: UInt = #line
        ) async throws
            -> String
        {
            try await eventually("a line '\(prefix)…' from the replica process", file: file, line: line) {
                !lines(startingWith: prefix).isEmpty
            }
            return try XCTUnwrap(lines(startingWith: prefix).first, "\(output.elements)", file: file, line: line)
        }

        func exitStatus() async throws -> Int32 {
            try await eventually("the replica process exited") { !process.isRunning }
            return process.terminationStatus
        }
    }
#endif
