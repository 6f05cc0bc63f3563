import Benchmark
import CallQueue
import Synchronization

// The call-path workloads (C1–C3): what the queue adds around a call, the gap between one call's end and
// the next one's start, and the cost of status queries and position updates at depth.

enum Metric {
    static let nanosecondsPerCall = BenchmarkMetric.custom("ns per call", useScalingFactor: false)
    static let gapP50 = BenchmarkMetric.custom("gap p50 us", useScalingFactor: false)
    static let gapP90 = BenchmarkMetric.custom("gap p90 us", useScalingFactor: false)
    static let gapMax = BenchmarkMetric.custom("gap max us", useScalingFactor: false)
    static let overheadPerCall = BenchmarkMetric.custom("overhead per call us", useScalingFactor: false)
    static let mostRunning = BenchmarkMetric.custom("most running at once", useScalingFactor: false)
    static let nanosecondsPerStatus = BenchmarkMetric.custom("ns per status", useScalingFactor: false)
    static let positionRoundMilliseconds = BenchmarkMetric.custom("position round ms", useScalingFactor: false)
    static let readsPerSecond = BenchmarkMetric.custom("device reads per s (x100)", useScalingFactor: false)
}

/// A device for the benchmarks: answers at once, counts nothing.
let fakeDevice = ClosureDeviceMonitor(device: DeviceIdentity(kind: "fake", index: 0)) {
    DeviceMemory(total: 80 << 30, free: 70 << 30, used: 10 << 30)
}

func nanoseconds(_ duration: Duration) -> Int {
    let parts = duration.components
    return Int(parts.seconds) * 1_000_000_000 + Int(parts.attoseconds / 1_000_000_000)
}

/// A shared, locked value for task closures.
final class Locked<Value: Sendable>: Sendable {
    let mutex: Mutex<Value>
    init(_ value: Value) { mutex = Mutex(value) }
    func withLock<Result: Sendable>(_ body: (inout sending Value) -> sending Result) -> Result {
        mutex.withLock(body)
    }
}

func configuration(_ metrics: [BenchmarkMetric], iterations: Int) -> Benchmark.Configuration {
    .init(metrics: [.wallClock] + metrics, warmupIterations: 1, maxDuration: .seconds(30), maxIterations: iterations)
}

let calls = 100_000

/// C2: `depth` callers queued on a limit-1 group, each body `work` long. Returns the gaps between one
/// body's end and the next one's start, and the time the queue added per call.
func handOffGaps(depth: Int, work: Duration) async throws -> (gaps: [Int], overheadPerCall: Int, mostRunning: Int) {
    let queue = try CallQueue()
    let spans = Locked<[(start: ContinuousClock.Instant, end: ContinuousClock.Instant)]>([])
    let running = Locked<(now: Int, most: Int)>((0, 0))
    let gate = Locked<Bool>(false)
    let start = ContinuousClock.now
    try await withThrowingTaskGroup(of: Void.self) { group in
        // A first call holds the slot until everyone has queued, so the measurement starts from a backlog.
        group.addTask {
            try await queue.runGPUCall(id: "task(backlog)") { _ in
                while !gate.withLock({ $0 }) { await Task.yield() }
            }
        }
        for index in 0..<depth {
            group.addTask {
                try await queue.runGPUCall(id: TaskID("task(\(index))")) { _ in
                    let began = ContinuousClock.now
                    running.withLock {
                        $0.now += 1; $0.most = max($0.most, $0.now)
                    }
                    if work > .zero { try await Task.sleep(for: work) }
                    running.withLock { $0.now -= 1 }
                    let ended = ContinuousClock.now
                    spans.withLock { $0.append((began, ended)) }
                }
            }
        }
        while queue.liveTasks.count < depth + 1 { await Task.yield() }
        gate.withLock { $0 = true }
        try await group.waitForAll()
    }
    let total = ContinuousClock.now - start
    let ordered = spans.withLock { $0 }.sorted { $0.start < $1.start }
    let gaps = zip(ordered, ordered.dropFirst()).map { nanoseconds($1.start - $0.end) / 1_000 }.sorted()
    let busy = ordered.reduce(Duration.zero) { $0 + ($1.end - $1.start) }
    return (gaps, nanoseconds(total - busy) / 1_000 / depth, running.withLock { $0.most })
}

let benchmarks: @Sendable () -> Void = {
    registerSubscribedHandOffBenchmarks()
    registerSoakBenchmark()
    registerBatchingBenchmarks()
    registerFairShareBenchmarks()
    registerStreamingBenchmarks()
    // C1's baselines, in the same binary: what a tracked call is measured against.
    Benchmark(
        "C1 baseline: bare child task created and awaited",
        configuration: configuration([Metric.nanosecondsPerCall], iterations: 10)
    ) { benchmark in
        let start = ContinuousClock.now
        for _ in 0..<calls {
            let child = Task { blackHole(1) }
            await child.value
        }
        benchmark.measurement(Metric.nanosecondsPerCall, nanoseconds(ContinuousClock.now - start) / calls)
    }

    Benchmark(
        "C1 baseline: uncontended FIFOSemaphore permit",
        configuration: configuration([Metric.nanosecondsPerCall], iterations: 10)
    ) { benchmark in
        let semaphore = FIFOSemaphore(permits: 1)
        let permits = calls * 10
        let start = ContinuousClock.now
        for _ in 0..<permits {
            try await semaphore.acquire()
            semaphore.release()
        }
        benchmark.measurement(Metric.nanosecondsPerCall, nanoseconds(ContinuousClock.now - start) / permits)
    }

    Benchmark("C1 submit + value", configuration: configuration([Metric.nanosecondsPerCall], iterations: 10)) {
        benchmark in
        let queue = try CallQueue()
        let start = ContinuousClock.now
        for _ in 0..<calls {
            blackHole(try await queue.submit { _ in 1 }.value)
        }
        benchmark.measurement(Metric.nanosecondsPerCall, nanoseconds(ContinuousClock.now - start) / calls)
    }

    Benchmark("C1 batch of one", configuration: configuration([Metric.nanosecondsPerCall], iterations: 10)) {
        benchmark in
        let queue = try CallQueue()
        let batcher = queue.makeBatcher(maxBatchSize: 1) { (inputs: [Int], _: BatchContext) in inputs }
        let start = ContinuousClock.now
        for index in 0..<calls { blackHole(try await batcher(index)) }
        benchmark.measurement(Metric.nanosecondsPerCall, nanoseconds(ContinuousClock.now - start) / calls)
    }

    Benchmark("C1 runQueued", configuration: configuration([Metric.nanosecondsPerCall], iterations: 10)) {
        benchmark in
        let queue = try CallQueue()
        let start = ContinuousClock.now
        for _ in 0..<calls {
            try await queue.runQueued { blackHole(1) }
        }
        benchmark.measurement(Metric.nanosecondsPerCall, nanoseconds(ContinuousClock.now - start) / calls)
    }

    Benchmark("C1 wrapQueuedCall", configuration: configuration([Metric.nanosecondsPerCall], iterations: 10)) {
        benchmark in
        let queue = try CallQueue()
        let call = wrapQueuedCall(queue) { (value: Int) in value }
        let start = ContinuousClock.now
        for index in 0..<calls {
            blackHole(try await call(index))
        }
        benchmark.measurement(Metric.nanosecondsPerCall, nanoseconds(ContinuousClock.now - start) / calls)
    }

    Benchmark("C1 runGPUCall", configuration: configuration([Metric.nanosecondsPerCall], iterations: 10)) {
        benchmark in
        let queue = try CallQueue()
        let start = ContinuousClock.now
        for _ in 0..<calls {
            try await queue.runGPUCall { _ in blackHole(1) }
        }
        benchmark.measurement(Metric.nanosecondsPerCall, nanoseconds(ContinuousClock.now - start) / calls)
    }

    Benchmark(
        "C1 runGPUCall with a sampler",
        configuration: configuration([Metric.nanosecondsPerCall], iterations: 10)
    ) { benchmark in
        let sampler = MemorySampler(monitor: fakeDevice, pollRate: 8)
        let queue = try CallQueue(configuration: .init(memorySampler: sampler))
        let start = ContinuousClock.now
        for _ in 0..<calls {
            try await queue.runGPUCall { _ in blackHole(1) }
        }
        benchmark.measurement(Metric.nanosecondsPerCall, nanoseconds(ContinuousClock.now - start) / calls)
        sampler.stop()
    }

    // C4: one sampler at 8 Hz serving 1, 10 and 100 calls open at once for two seconds.
    for concurrent in [1, 10, 100] {
        Benchmark(
            "C4 sampler, \(concurrent) concurrent calls",
            configuration: configuration([Metric.readsPerSecond], iterations: 3)
        ) { benchmark in
            let sampler = MemorySampler(monitor: fakeDevice, pollRate: 8)
            let windows = (0..<concurrent).map { _ in sampler.openWindow() }
            let start = ContinuousClock.now
            try await Task.sleep(for: .seconds(2))
            let reads = sampler.readCount
            let elapsed = ContinuousClock.now - start
            for window in windows { _ = window.close() }
            sampler.stop()
            let perSecond = Double(reads) / (Double(nanoseconds(elapsed)) / 1e9)
            benchmark.measurement(Metric.readsPerSecond, Int((perSecond * 100).rounded()))
        }
    }

    Benchmark("C1 wrapGPUCall", configuration: configuration([Metric.nanosecondsPerCall], iterations: 10)) {
        benchmark in
        let queue = try CallQueue()
        let call = wrapGPUCall(queue) { (value: Int) in value }
        let start = ContinuousClock.now
        for index in 0..<calls {
            blackHole(await call(index))
        }
        benchmark.measurement(Metric.nanosecondsPerCall, nanoseconds(ContinuousClock.now - start) / calls)
    }

    for (depth, work) in [(50, Duration.zero), (200, Duration.zero), (50, .milliseconds(10)), (200, .milliseconds(10))]
    {
        let label = "C2 depth \(depth) body \(work == .zero ? "0" : "10") ms"
        Benchmark(
            label,
            configuration: configuration(
                [Metric.gapP50, Metric.gapP90, Metric.gapMax, Metric.overheadPerCall, Metric.mostRunning],
                iterations: work == .zero ? 20 : 3
            )
        ) { benchmark in
            let result = try await handOffGaps(depth: depth, work: work)
            let gaps = result.gaps
            benchmark.measurement(Metric.gapP50, gaps[gaps.count / 2])
            benchmark.measurement(Metric.gapP90, gaps[gaps.count * 9 / 10])
            benchmark.measurement(Metric.gapMax, gaps.last ?? 0)
            benchmark.measurement(Metric.overheadPerCall, result.overheadPerCall)
            benchmark.measurement(Metric.mostRunning, result.mostRunning)
        }
    }

    Benchmark(
        "C3 100,000 queued",
        configuration: configuration([Metric.nanosecondsPerStatus, Metric.positionRoundMilliseconds], iterations: 3)
    ) { benchmark in
        let depth = 100_000
        let queue = try CallQueue()
        let gate = Locked<Bool>(false)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                try await queue.runGPUCall(id: "task(head)") { _ in
                    while !gate.withLock({ $0 }) { await Task.yield() }
                }
            }
            while queue.liveTasks.count < 1 { await Task.yield() }
            let first = Task { try await queue.runGPUCall(id: "task(first)") { _ in } }
            while queue.liveTasks.count < 2 { await Task.yield() }
            for index in 0..<depth {
                group.addTask { _ = try? await queue.runGPUCall(id: TaskID("task(\(index))")) { _ in } }
            }
            while queue.liveTasks.count < depth + 2 { await Task.yield() }

            // One task's status, asked many times.
            let probe = TaskID("task(\(depth / 2))")
            let queries = 100_000
            let start = ContinuousClock.now
            for _ in 0..<queries { blackHole(try queue.status(of: probe)) }
            benchmark.measurement(Metric.nanosecondsPerStatus, nanoseconds(ContinuousClock.now - start) / queries)

            // Every waiting task has a subscriber; the first waiter leaves, so all others move up one place.
            // Its call returns once every subscriber has been given its new position.
            let streams = try (0..<depth).map { try queue.updates(of: TaskID("task(\($0))")) }
            let round = ContinuousClock.now
            try queue.cancel("task(first)")
            _ = try? await first.value
            benchmark.measurement(
                Metric.positionRoundMilliseconds, nanoseconds(ContinuousClock.now - round) / 1_000_000)
            blackHole(streams.count)
            gate.withLock { $0 = true }
            try await group.waitForAll()
        }
    }
}
