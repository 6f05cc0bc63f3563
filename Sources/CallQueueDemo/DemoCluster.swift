import CallQueue
import Foundation
import Synchronization

#if Postgres
    import CallQueuePostgres
    import Logging
    import PostgresNIO
#endif

/// With `--postgres`: the "gpu" group becomes one line across every demo process that uses the same
/// database, served by a `PostgresPermitSource` running beside the queue.
final class DemoCluster: Sendable {
    let permitSources: [ConcurrencyGroupID: any ClusterPermitSource]
    private let client: Task<Void, Never>
    private let source: Task<Void, Never>
    /// Every grant this process got: which call, slot and fencing number, and when it ran (wall clock).
    let grants = Mutex<[String]>([])

    private init(
        permitSources: [ConcurrencyGroupID: any ClusterPermitSource], client: Task<Void, Never>,
        source: Task<Void, Never>
    ) {
        self.permitSources = permitSources
        self.client = client
        self.source = source
    }

    static func start(_ options: DemoOptions) throws -> DemoCluster? {
        guard let url = options.postgres else { return nil }
        #if Postgres
            var logger = Logger(label: "call-queue-demo")
            logger.logLevel = .warning
            let settings = try PostgresPermitSource.connectionSettings(url: url)
            let client = PostgresClient(configuration: settings.client, backgroundLogger: logger)
            let source = PostgresPermitSource(
                client: client, listenerConfiguration: settings.listener,
                configuration: .init(
                    replica: options.replica, groups: ["gpu": options.gpuSlots], schema: "call_queue_demo",
                    lease: .seconds(5), heartbeat: .seconds(1), reaperInterval: .milliseconds(500),
                    safetyMargin: .seconds(1)),
                logger: logger)
            // The pool outlives the source, which ends its session through it (see stop()).
            let clientTask = Task { await client.run() }
            let sourceTask = Task {
                do {
                    try await source.run()
                } catch {
                    print("the cluster service stopped: \(error)")
                }
            }
            return DemoCluster(permitSources: ["gpu": source], client: clientTask, source: sourceTask)
        #else
            _ = url
            throw DemoError(
                "--postgres needs the Postgres trait: swift run --traits Postgres CallQueueDemo --postgres URL ...")
        #endif
    }

    func record(_ context: CallContext, from start: Date) {
        guard let permit = context.permit else { return }
        let line = String(
            format: "cluster grant task=%@ slot=%d fence=%lld start=%.6f end=%.6f", context.taskID.rawValue,
            permit.slot, permit.fence, start.timeIntervalSince1970, Date().timeIntervalSince1970)
        grants.withLock { $0.append(line) }
    }

    /// Ends this replica's session (its slots go to the other replicas at once), then stops the pool.
    func stop() async {
        source.cancel()
        await source.value
        client.cancel()
        await client.value
    }
}
