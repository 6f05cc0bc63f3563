import Benchmark
import CallQueue

// S1: one call emits 100,000 chunks (a long generation, in bursts of 64 with a yield after each) with 0, 1, 100
// and 1,000 subscribers that read every element, and with one subscriber that never reads. Emit cost per chunk
// (the body's time in its bursts of emits),
// delivery cost per chunk per reader (from the first emit until every reader has its last element, over
// chunks x readers), the share of chunks the readers missed (dropped from the window before they read), and
// the resident-memory growth over the 100,000 emits with the reader that never reads (the window stays at
// its cap). The "0 subscribers" row is the figure the others are read against.

extension Metric {
    static let emitNanoseconds = BenchmarkMetric.custom("emit ns per chunk", useScalingFactor: false)
    static let deliveryNanoseconds = BenchmarkMetric.custom("delivery ns per chunk per reader", useScalingFactor: false)
    static let missedPermille = BenchmarkMetric.custom("missed per reader (x1000)", useScalingFactor: false)
}

enum StreamReaders: CustomStringConvertible {
    case reading(Int)
    case neverReading

    var description: String {
        switch self {
        case .reading(let count): "\(count) reading subscribers"
        case .neverReading: "1 subscriber that never reads"
        }
    }
}

let streamedChunks = 100_032  // 1,563 bursts of 64

/// One S1 run: returns the emit time per chunk, the delivery time per chunk per reader, the missed share, and
/// the resident-memory growth.
func streamChunks(
    readers: StreamReaders
) async throws -> (emit: Duration, delivery: Duration, missed: Double, growthMB: Int) {
    let queue = try CallQueue()
    let go = Locked<Bool>(false)
    let emitTime = Locked<Duration>(.zero)
    let job = try queue.submit { context in
        while !go.withLock({ $0 }) { await Task.yield() }
        // Bursts of 64 chunks, each followed by a yield, as a model hands over tokens: the readers get to run
        // between bursts. Only the bursts are timed.
        var emitting = Duration.zero
        for burst in 0..<(streamedChunks / 64) {
            let start = ContinuousClock.now
            for index in 0..<64 {
                context.emitChunk((burst + index) % 2 == 0 ? " fox" : " runs")
            }
            emitting += ContinuousClock.now - start
            await Task.yield()
        }
        emitTime.withLock { $0 = emitting }
    }
    while (try? queue.status(of: job.id))?.state.running == nil { await Task.yield() }
    var tasks: [Task<(read: Int, missed: Int), Never>] = []
    var idle: TaskOutputs<Never, String>?
    switch readers {
    case .reading(let count):
        for _ in 0..<count {
            let outputs = try queue.outputs(of: job.id, chunks: String.self)
            tasks.append(
                Task {
                    var read = 0
                    var missed = 0
                    for await update in outputs {
                        read += update.chunks.count
                        missed += update.missedChunks
                    }
                    return (read, missed)
                })
        }
        try await Task.sleep(for: .milliseconds(100))  // every reader has read its first element and waits
    case .neverReading:
        idle = try queue.outputs(of: job.id, chunks: String.self)
    }
    let before = residentMegabytes()
    let start = ContinuousClock.now
    go.withLock { $0 = true }
    try await job.value
    let growth = residentMegabytes() - before
    var read = 0
    var missed = 0
    for task in tasks {
        let outcome = await task.value
        read += outcome.read
        missed += outcome.missed
    }
    let delivered = ContinuousClock.now - start
    _ = idle
    let count = tasks.count
    return (
        emitTime.withLock { $0 } / streamedChunks,
        count == 0 ? .zero : delivered / (streamedChunks * count),
        count == 0 ? 0 : Double(missed) / Double(read + missed),
        growth
    )
}

func registerStreamingBenchmarks() {
    for readers in [StreamReaders.reading(0), .reading(1), .reading(100), .reading(1_000), .neverReading] {
        Benchmark(
            "S1 100,000 chunks, \(readers)",
            configuration: configuration(
                [Metric.emitNanoseconds, Metric.deliveryNanoseconds, Metric.missedPermille, Metric.rssGrowthMB],
                iterations: 5)
        ) { benchmark in
            let outcome = try await streamChunks(readers: readers)
            benchmark.measurement(Metric.emitNanoseconds, nanoseconds(outcome.emit))
            benchmark.measurement(Metric.deliveryNanoseconds, nanoseconds(outcome.delivery))
            benchmark.measurement(Metric.missedPermille, Int(outcome.missed * 1_000))
            benchmark.measurement(Metric.rssGrowthMB, outcome.growthMB)
        }
    }
}
