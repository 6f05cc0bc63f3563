import CallQueue
import Foundation

// A simulated image-generation server in front of `--slots` GPUs: clients arrive over time, each asking for
// an image (or an upscale on the CPU group); calls report progress step by step, some fail, some are
// cancelled by id. A live view shows positions, ETAs, progress and slots; the end prints every task's
// outcome and cost, and a summary.

let options: DemoOptions
do {
    options = try DemoOptions(arguments: Array(CommandLine.arguments.dropFirst()))
} catch let error as DemoError {
    print(error.description)
    exit(error.isHelp ? 0 : 2)
}

let cluster: DemoCluster?
do {
    cluster = try DemoCluster.start(options)
} catch {
    print(error)
    exit(2)
}
// One sampler per GPU (slot k of "gpu" runs on GPU k, wrapping around), or one of the host's memory without NVML.
let selections = DeviceMonitorSelection.automaticForEachDevice()
let samplers = selections.map { MemorySampler(monitor: $0.monitor, pollRate: 8) }
let printer = EventPrinter(enabled: !options.interactive && !options.json)
let queue = try CallQueue(
    configuration: .init(
        groups: [
            "gpu": .init(limit: .limited(options.gpuSlots), maxQueueSize: 1_000),
            "cpu": .init(limit: .unlimited),
        ],
        initialRunTimeEstimate: .seconds(1),
        observer: printer,
        deviceSamplers: samplers,
        permitSources: cluster?.permitSources ?? [:],
        shutdownGracePeriod: .seconds(5)
    )
)
let server = SimulatedServer(queue: queue, batchSize: options.batch, cluster: cluster)

var random = SeededRandom(state: options.seed)
let requests: [(arrival: Duration, request: SimulatedServer.Request)] = (0..<options.clients).map { index in
    let arrival = Duration.seconds(options.duration * Double(index) / Double(options.clients))
    let onGPU = Double.random(in: 0..<1, using: &random) < 0.75
    let cancels = Double.random(in: 0..<1, using: &random) < 0.1
    return (
        arrival,
        SimulatedServer.Request(
            id: TaskID(
                cluster == nil
                    ? String(format: "task(client-%03d)", index)
                    : String(format: "task(%@-client-%03d)", options.replica, index)),
            group: onGPU ? "gpu" : "cpu",
            steps: Int.random(in: 8...20, using: &random),
            stepDuration: .milliseconds(onGPU ? Int.random(in: 50...90, using: &random) : 20),
            fails: Double.random(in: 0..<1, using: &random) < 0.1,
            cancelAfter: cancels ? .milliseconds(Int.random(in: 200...1_500, using: &random)) : nil
        )
    )
}

if !options.json {
    print(
        "swift-call-queue demo: \(options.clients) clients over \(options.duration) s, \(options.gpuSlots) GPU slots"
            + (options.batch > 1 ? ", batches of up to \(options.batch)" : ""))
    for selection in selections { print("memory: \(selection)") }
    if cluster != nil {
        print("cluster: \"gpu\" is one line across replicas sharing the database; this is \(options.replica)")
    }
}

// SIGTERM or SIGINT: no client arrives any more, and the queue shuts down as a server's would.
let shutdown = DemoShutdown()
let queueStopped = Task {
    // Stopped by a signal, or at the end of the run: either way the queue ends with nothing of its own alive.
    await queue.run()
}
shutdown.trap([(SIGTERM, "SIGTERM"), (SIGINT, "SIGINT")]) { name in
    if !options.json {
        print(
            "\(name): shutting down: no new client, waiting calls refused, running calls get "
                + "\(queue.configuration.shutdownGracePeriod)")
    }
    queue.close()
}

let start = ContinuousClock.now
let liveView = options.interactive ? Task { await LiveView(queue: queue, start: start).run() } : nil
let responses = await withTaskGroup(of: (SimulatedServer.Request, CallResponse<String>).self) { group in
    for (arrival, request) in requests {
        group.addTask {
            guard await shutdown.sleep(until: start + arrival) else {
                return (
                    request,
                    CallResponse(
                        notRun: CallQueueError(.closed, "the demo was stopped"), taskID: request.id, outputs: "")
                )
            }
            if let cancelAfter = request.cancelAfter {
                // Another request (a Cancel button) cancels this one by id.
                Task {
                    try? await Task.sleep(for: cancelAfter)
                    _ = try? queue.cancel(request.id)
                }
            }
            return (request, await server.handle(request))
        }
    }
    var collected: [(SimulatedServer.Request, CallResponse<String>)] = []
    for await response in group { collected.append(response) }
    return collected
}
let wallTime = ContinuousClock.now - start
liveView?.cancel()
await liveView?.value
queue.close()
await queueStopped.value
if let signal = shutdown.stoppedBy, !options.json {
    print("\(signal): the queue has shut down; \(responses.count) clients answered")
}
await cluster?.stop()

let report = Report(
    responses: responses.sorted { $0.0.id.rawValue < $1.0.id.rawValue },
    wallTime: wallTime,
    gpuSlots: options.gpuSlots,
    monitor: selections[0]
)
if options.json {
    print(report.json())
} else {
    report.printText()
    if let cluster {
        let grants = cluster.grants.withLock { $0 }
        print("\n\(grants.count) cluster grants on \(options.replica):")
        for line in grants { print(line) }
    }
}
