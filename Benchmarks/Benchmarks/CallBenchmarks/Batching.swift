import Benchmark
import CallQueue

// B1: a simulated GPU whose batch costs 20 ms + 2 ms per item; 1,000 calls from 200 concurrent callers on
// one slot, unbatched and with maxBatchSize 4, 8, 16 and maxDelay 0 / 5 ms: calls per second and p50/p99
// latency (compare with the unbatched row of the same run). And the queue's own cost per member beyond a
// plain job, with bodies that cost nothing.

extension Metric {
    static let callsPerSecondB1 = BenchmarkMetric.custom("calls per s", useScalingFactor: false)
    static let latencyP50 = BenchmarkMetric.custom("latency p50 ms", useScalingFactor: false)
    static let latencyP99 = BenchmarkMetric.custom("latency p99 ms", useScalingFactor: false)
    static let meanBatch = BenchmarkMetric.custom("mean batch size (x10)", useScalingFactor: false)
}

func batchCost(_ items: Int) -> Duration { .milliseconds(20) + .milliseconds(2) * items }

/// Runs `calls` calls from `callers` concurrent callers; `call` makes one. Returns calls per second and the
/// latencies, sorted.
func drive(
    calls: Int, callers: Int, _ call: @escaping @Sendable (Int) async throws -> Void
) async throws
    -> (perSecond: Int, latencies: [Duration])
{
    let latencies = Locked<[Duration]>([])
    let start = ContinuousClock.now
    try await withThrowingTaskGroup(of: Void.self) { group in
        for caller in 0..<callers {
            group.addTask {
                var index = caller
                while index < calls {
                    let begin = ContinuousClock.now
                    try await call(index)
                    let latency = ContinuousClock.now - begin
                    latencies.withLock { $0.append(latency) }
                    index += callers
                }
            }
        }
        try await group.waitForAll()
    }
    let elapsed = ContinuousClock.now - start
    return (Int(Double(calls) / (elapsed / .milliseconds(1)) * 1_000), latencies.withLock { $0 }.sorted())
}

func registerBatchingBenchmarks() {
    let calls = 1_000
    let callers = 200
    func record(_ benchmark: Benchmark, _ result: (perSecond: Int, latencies: [Duration]), meanBatch: Double) {
        benchmark.measurement(Metric.callsPerSecondB1, result.perSecond)
        benchmark.measurement(Metric.latencyP50, nanoseconds(result.latencies[result.latencies.count / 2]) / 1_000_000)
        benchmark.measurement(
            Metric.latencyP99, nanoseconds(result.latencies[result.latencies.count * 99 / 100]) / 1_000_000)
        benchmark.measurement(Metric.meanBatch, Int(meanBatch * 10))
    }
    let metrics = [Metric.callsPerSecondB1, Metric.latencyP50, Metric.latencyP99, Metric.meanBatch]

    Benchmark("B1 unbatched (runGPUCall)", configuration: configuration(metrics, iterations: 1)) { benchmark in
        let queue = try CallQueue(configuration: .init(groups: ["gpu": .init(limit: 1)]))
        let result = try await drive(calls: calls, callers: callers) { _ in
            try await queue.runGPUCall(group: "gpu") { _ in try await Task.sleep(for: batchCost(1)) }
        }
        record(benchmark, result, meanBatch: 1)
    }
    for maxDelay in [Duration.zero, .milliseconds(5)] {
        for size in [1, 4, 8, 16] {
            Benchmark(
                "B1 maxBatchSize \(size), maxDelay \(maxDelay == .zero ? "0" : "5 ms")",
                configuration: configuration(metrics, iterations: 1)
            ) { benchmark in
                let queue = try CallQueue(configuration: .init(groups: ["gpu": .init(limit: 1)]))
                let batches = Locked<(count: Int, items: Int)>((0, 0))
                let batcher = queue.makeBatcher(group: "gpu", maxBatchSize: size, maxDelay: maxDelay) {
                    (inputs: [Int], _: BatchContext) in
                    batches.withLock { $0 = ($0.count + 1, $0.items + inputs.count) }
                    try await Task.sleep(for: batchCost(inputs.count))
                    return inputs
                }
                let result = try await drive(calls: calls, callers: callers) { index in _ = try await batcher(index) }
                let (count, items) = batches.withLock { $0 }
                record(benchmark, result, meanBatch: Double(items) / Double(max(count, 1)))
            }
        }
    }

    // The queue's own cost: 100,000 calls with bodies that cost nothing, one caller at a time.
    let overheadCalls = 100_000
    Benchmark("B1 cost per call: runGPUCall", configuration: configuration([Metric.nanosecondsPerCall], iterations: 5))
    {
        benchmark in
        let queue = try CallQueue()
        let start = ContinuousClock.now
        for _ in 0..<overheadCalls { try await queue.runGPUCall { _ in blackHole(1) } }
        benchmark.measurement(Metric.nanosecondsPerCall, nanoseconds(ContinuousClock.now - start) / overheadCalls)
    }
    Benchmark(
        "B1 cost per call: batcher member (batches of 1)",
        configuration: configuration([Metric.nanosecondsPerCall], iterations: 5)
    ) { benchmark in
        let queue = try CallQueue()
        let batcher = queue.makeBatcher(maxBatchSize: 8) { (inputs: [Int], _: BatchContext) in inputs }
        let start = ContinuousClock.now
        for index in 0..<overheadCalls { _ = try await batcher(index) }
        benchmark.measurement(Metric.nanosecondsPerCall, nanoseconds(ContinuousClock.now - start) / overheadCalls)
    }
    Benchmark(
        "B1 cost per call: batcher member (64 callers, batches of 8)",
        configuration: configuration([Metric.nanosecondsPerCall], iterations: 5)
    ) { benchmark in
        let queue = try CallQueue()
        let batcher = queue.makeBatcher(maxBatchSize: 8) { (inputs: [Int], _: BatchContext) in inputs }
        let start = ContinuousClock.now
        _ = try await drive(calls: overheadCalls, callers: 64) { index in _ = try await batcher(index) }
        benchmark.measurement(Metric.nanosecondsPerCall, nanoseconds(ContinuousClock.now - start) / overheadCalls)
    }
    Benchmark(
        "B1 cost per call: runGPUCall (64 callers)",
        configuration: configuration([Metric.nanosecondsPerCall], iterations: 5)
    ) { benchmark in
        let queue = try CallQueue()
        let start = ContinuousClock.now
        _ = try await drive(calls: overheadCalls, callers: 64) { _ in try await queue.runGPUCall { _ in blackHole(1) } }
        benchmark.measurement(Metric.nanosecondsPerCall, nanoseconds(ContinuousClock.now - start) / overheadCalls)
    }
}
