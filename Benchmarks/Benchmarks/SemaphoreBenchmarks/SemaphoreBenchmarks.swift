import Benchmark
import CallQueue
import Synchronization

// The semaphore workloads of BENCHMARKS.md (W1–W5) for FIFOSemaphore and, in the same binary, the two
// baselines: a bare Mutex (W1 only, the floor) and a plain actor with an array of continuations.
// Each iteration runs a whole workload; the custom metrics carry the figures the workload defines.

enum Metric {
    static let nanosecondsPerOperation = BenchmarkMetric.custom("ns per op", useScalingFactor: false)
    static let picosecondsPerOperation = BenchmarkMetric.custom("ps per op", useScalingFactor: false)
    static let mostHolders = BenchmarkMetric.custom("most holders at once", useScalingFactor: false)
    static let drainMilliseconds = BenchmarkMetric.custom("drain ms", useScalingFactor: false)
    static let bytesPerWaiter = BenchmarkMetric.custom("bytes per waiter", useScalingFactor: false)
    static let ownBytesPerWaiter = BenchmarkMetric.custom("own bytes per waiter", useScalingFactor: false)
    static let violations = BenchmarkMetric.custom("FIFO violations", useScalingFactor: false)
    static let cancelMilliseconds = BenchmarkMetric.custom("cancel-all ms", useScalingFactor: false)
    static let acquiredAfterCancel = BenchmarkMetric.custom("acquired despite cancel", useScalingFactor: false)
}

let uncontendedOperations = 1_000_000

func configuration(_ metrics: [BenchmarkMetric], iterations: Int) -> Benchmark.Configuration {
    .init(metrics: [.wallClock] + metrics, warmupIterations: 1, maxDuration: .seconds(30), maxIterations: iterations)
}

@inline(never)
func measureUncontended(_ benchmark: Benchmark, _ body: () async throws -> Void) async rethrows {
    let start = ContinuousClock.now
    try await body()
    benchmark.measurement(
        Metric.picosecondsPerOperation,
        nanoseconds(ContinuousClock.now - start) * 1000 / uncontendedOperations
    )
}

func registerContended<S: BenchmarkedSemaphore>(_ type: S.Type) {
    // With an empty critical section most operations find the permit free; the "yielding" variants yield
    // while holding, so that every acquire meets a holder and every release is a hand-off.
    for (workload, permits, yielding) in [
        ("W2", 1, false), ("W3", 4, false), ("W2 yielding", 1, true), ("W3 yielding", 4, true),
    ] {
        Benchmark(
            "\(workload) \(S.name)",
            // The yielding variants swing between runs with how the pool's two threads sleep and wake:
            // more samples.
            configuration: configuration(
                [Metric.nanosecondsPerOperation, Metric.mostHolders],
                iterations: yielding ? 15 : 5
            )
        ) { benchmark in
            let result = await contended(S.self, permits: permits, yieldWhileHolding: yielding)
            precondition(result.mostHolders <= permits, "\(S.name) let \(result.mostHolders) hold \(permits) permits")
            benchmark.measurement(Metric.nanosecondsPerOperation, result.nanosecondsPerOperation)
            benchmark.measurement(Metric.mostHolders, result.mostHolders)
        }
    }
}

func registerDeep<S: BenchmarkedSemaphore>(_ type: S.Type) {
    Benchmark(
        "W4 \(S.name)",
        configuration: configuration(
            [Metric.drainMilliseconds, Metric.bytesPerWaiter, Metric.ownBytesPerWaiter, Metric.violations],
            iterations: 3
        )
    ) { benchmark in
        let taskBytes = await bytesForSuspendedTasks(100_000) / 100_000
        let result = await deepQueue(S.self)
        benchmark.measurement(Metric.drainMilliseconds, result.drainNanoseconds / 1_000_000)
        benchmark.measurement(Metric.bytesPerWaiter, result.bytesPerWaiter)
        benchmark.measurement(Metric.ownBytesPerWaiter, result.bytesPerWaiter - taskBytes)
        benchmark.measurement(Metric.violations, result.violations)
    }
    // Two sizes, to show that cancelling is linear in the number of waiters.
    for (label, count) in [("", 100_000), (" 25k", 25_000)] {
        Benchmark(
            "W5\(label) \(S.name)",
            configuration: configuration([Metric.cancelMilliseconds, Metric.acquiredAfterCancel], iterations: 3)
        ) { benchmark in
            let result = await cancelAll(S.self, count: count)
            benchmark.measurement(Metric.cancelMilliseconds, result.nanoseconds / 1_000_000)
            benchmark.measurement(Metric.acquiredAfterCancel, result.acquired)
        }
    }
}

let benchmarks: @Sendable () -> Void = {
    Benchmark("W1 Mutex", configuration: configuration([Metric.picosecondsPerOperation], iterations: 20)) {
        benchmark in
        let mutex = Mutex(0)
        await measureUncontended(benchmark) {
            for _ in 0..<uncontendedOperations {
                mutex.withLock { $0 &+= 1 }
            }
        }
        blackHole(mutex.withLock { $0 })
    }

    Benchmark("W1 FIFOSemaphore", configuration: configuration([Metric.picosecondsPerOperation], iterations: 20)) {
        benchmark in
        let semaphore = FIFOSemaphore(permits: 1)
        try await measureUncontended(benchmark) {
            for _ in 0..<uncontendedOperations {
                try await semaphore.acquire()
                semaphore.release()
            }
        }
    }

    Benchmark(
        "W1 FIFOSemaphore tryAcquire",
        configuration: configuration([Metric.picosecondsPerOperation], iterations: 20)
    ) { benchmark in
        let semaphore = FIFOSemaphore(permits: 1)
        await measureUncontended(benchmark) {
            for _ in 0..<uncontendedOperations {
                precondition(semaphore.tryAcquire())
                semaphore.release()
            }
        }
    }

    Benchmark(
        "W1 ActorFIFOSemaphore",
        configuration: configuration([Metric.picosecondsPerOperation], iterations: 20)
    ) { benchmark in
        let semaphore = BaselineSemaphore(permits: 1)
        try await measureUncontended(benchmark) {
            for _ in 0..<uncontendedOperations {
                try await semaphore.acquire()
                await semaphore.release()
            }
        }
    }

    registerContended(OurSemaphore.self)
    registerContended(BaselineSemaphore.self)
    registerDeep(OurSemaphore.self)
    registerDeep(BaselineSemaphore.self)
}
