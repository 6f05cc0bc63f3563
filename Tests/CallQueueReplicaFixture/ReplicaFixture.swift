// A replica process for the fault tests that need a real process (SIGKILL, SIGSTOP, SIGTERM): a CallQueue with one
// cluster-wide group, its PostgresPermitSource and pool in a ServiceGroup (the client listed first), SIGTERM as
// its graceful shutdown. It submits the calls it is given and prints one line per event on standard output:
//
//   ready                              the source's session is open
//   started ID SLOT FENCE              a call got its grant
//   write ID FENCE accepted|refused    a fenced call's write to the test's worker row
//   outcome ID ok|CODE|cancelled       a call ended
//   exit                               the service group returned and every call has its outcome
//
// Arguments: url=… schema=… replica=… lease=SECONDS grace=SECONDS calls=ID:KIND,… where KIND is `hold` (runs until
// stopped), `fenced` (writes its fence to the worker row, a GPU worker that checks fences, until it is stopped and
// once after), or `quick` (returns at once).

#if Postgres
    import CallQueue
    import CallQueuePostgres
    import Foundation
    import Logging
    import PostgresNIO
    import ServiceLifecycle

    func say(_ line: String) {
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }

    @main
    enum ReplicaFixture {
        static func main() async throws {
            var arguments: [String: String] = [:]
            for argument in CommandLine.arguments.dropFirst() {
                let parts = argument.split(separator: "=", maxSplits: 1).map(String.init)
                if parts.count == 2 { arguments[parts[0]] = parts[1] }
            }
            guard let url = arguments["url"], let schema = arguments["schema"], let replica = arguments["replica"],
                let lease = arguments["lease"].flatMap(Double.init), let grace = arguments["grace"].flatMap(Double.init)
            else {
                FileHandle.standardError.write(
                    Data("usage: url=… schema=… replica=… lease=S grace=S calls=ID:KIND,…\n".utf8))
                exit(2)
            }
            let calls = (arguments["calls"] ?? "").split(separator: ",").map {
                $0.split(separator: ":").map(String.init)
            }

            var log = Logger(label: "replica-fixture")
            log.logLevel =
                ProcessInfo.processInfo.environment["CQ_TEST_LOG"].flatMap { Logger.Level(rawValue: $0) } ?? .critical
            let logger = log
            let settings = try PostgresPermitSource.connectionSettings(url: url)
            let client = PostgresClient(configuration: settings.client, backgroundLogger: logger)
            let source = PostgresPermitSource(
                client: client, listenerConfiguration: settings.listener,
                configuration: .init(
                    replica: replica, groups: ["gpu": 1], schema: schema, lease: .seconds(lease),
                    heartbeat: .seconds(lease / 5), reaperInterval: .milliseconds(500),
                    safetyMargin: .seconds(lease / 4),
                    shutdownGracePeriod: .seconds(grace)),
                logger: logger)
            let queue = try CallQueue(
                configuration: .init(groups: ["gpu": .init(limit: .limited(1))], permitSources: ["gpu": source]))
            let services = ServiceGroup(
                services: [client, source], gracefulShutdownSignals: [.sigterm], logger: logger)

            /// Writes `fence` to the worker row unless a larger one is there; in a task of its own, so that a cancelled
            /// call still sends it (a paused process that resumes acts before it notices).
            @Sendable func write(_ fence: Int64) async -> Bool {
                await Task {
                    let rows = try? await client.query(
                        """
                        UPDATE \(unescaped: schema).worker SET fence = \(fence), writer = \(replica)
                        WHERE id = 0 AND fence <= \(fence) RETURNING fence
                        """, logger: logger)
                    guard let rows else { return false }
                    return ((try? await rows.collect().count) ?? 0) == 1
                }.value
            }

            var outcomes: [Task<Void, Never>] = []
            for call in calls where call.count == 2 {
                let id = TaskID(call[0])
                let kind = call[1]
                let handle = try queue.submit(id: id, group: "gpu") { context in
                    let permit = context.permit!
                    say("started \(id) \(permit.slot) \(permit.fence)")
                    switch kind {
                    case "hold":
                        try await Task.sleep(for: .seconds(3600))
                    case "fenced":
                        // Writes until it is stopped, and once more after it notices (as a call that acts before it
                        // checks would): that last write comes after its lease was lost.
                        while true {
                            try? await Task.sleep(for: .milliseconds(20))
                            let stopped = Task.isCancelled
                            let accepted = await write(permit.fence)
                            say("write \(id) \(permit.fence) \(accepted ? "accepted" : "refused")")
                            if stopped { throw CancellationError() }
                        }
                    default:
                        break
                    }
                }
                outcomes.append(
                    Task {
                        do {
                            try await handle.value
                            say("outcome \(id) ok")
                        } catch let error as CallQueueError {
                            say("outcome \(id) \(error.code)")
                        } catch is CancellationError {
                            say("outcome \(id) cancelled")
                        } catch {
                            say("outcome \(id) other \(error)")
                        }
                    })
            }
            let ready = Task {
                // Ready once the session's row is in the database.
                while !Task.isCancelled {
                    let query: PostgresQuery = """
                        SELECT count(*) FROM \(unescaped: schema).cq_session
                        WHERE replica = \(replica) AND lease_until > now()
                        """
                    var count: Int64 = 0
                    if let rows = try? await client.query(query, logger: logger) {
                        for try await value in rows.decode(Int64.self) { count = value }
                    }
                    if count > 0 {
                        say("ready")
                        return
                    }
                    try? await Task.sleep(for: .milliseconds(20))
                }
            }
            do {
                try await services.run()
            } catch {
                say("services failed \(error)")
            }
            ready.cancel()
            for outcome in outcomes { await outcome.value }
            say("exit")
            exit(0)
        }
    }
#else
    import Foundation

    @main
    enum ReplicaFixture {
        static func main() {
            print("the replica fixture needs the Postgres trait")
            exit(2)
        }
    }
#endif
