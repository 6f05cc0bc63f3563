import Benchmark
import CallQueue

// C5: hand-offs on a limit-1 group with n jobs waiting, with no subscribers, with a subscriber per job
// that never reads, and with one that reads every element; then cancelling every waiter; and status
// queries from another task while the line drains. Ratios to "no subscribers" are read off one run.
// Two more reading modes push positions with no interval: every move, or only moves of a tenth of the
// place last told (`positionUpdateFraction`); their ratio is what the fraction saves.

enum SubscriberMode: String, CaseIterable {
    case none = "no subscribers"
    case idle = "idle subscribers"
    case reading = "reading subscribers"
    case readingEveryMove = "reading subscribers, no interval, every move"
    case readingTenths = "reading subscribers, no interval, moves of a tenth"
    case noneFair = "no subscribers, fair share"
    case readingFair = "reading subscribers, fair share"

    var configuration: CallQueue.Configuration {
        switch self {
        case .none, .idle, .reading: CallQueue.Configuration()
        case .noneFair, .readingFair:
            CallQueue.Configuration(groups: [.default: .init(limit: 1, discipline: .fairShare(FairShare()))])
        case .readingEveryMove: CallQueue.Configuration(positionUpdateInterval: .zero)
        case .readingTenths: CallQueue.Configuration(positionUpdateInterval: .zero, positionUpdateFraction: 0.1)
        }
    }
}

extension Metric {
    static let handOffMicroseconds = BenchmarkMetric.custom("hand-off us", useScalingFactor: false)
    static let cancelAllMilliseconds = BenchmarkMetric.custom("cancel all ms", useScalingFactor: false)
    static let statusP99Microseconds = BenchmarkMetric.custom("status p99 us", useScalingFactor: false)
    static let messagesPerSubscriber = BenchmarkMetric.custom("messages per reader (x100)", useScalingFactor: false)
}

/// One C5 run: returns the time per hand-off over the first `handOffs` at full depth, the time to cancel
/// every remaining waiter, the p99 of `status(of:)` while they drained, and the mean messages per reader.
func subscribedHandOff(
    depth: Int, handOffs: Int, mode: SubscriberMode
) async throws -> (handOff: Duration, cancelAll: Duration, statusP99: Duration, messages: Double) {
    let queue = try CallQueue(configuration: mode.configuration)
    let started = Locked<Int>(0)
    let entered = Locked<Int>(0)
    let gate = Locked<Bool>(false)
    let holder = try queue.submit { _ in
        while !gate.withLock({ $0 }) { await Task.yield() }
    }
    let ids = (0..<depth).map { TaskID("task(\($0))") }
    var jobs: [Task<Void, Never>] = []
    jobs.reserveCapacity(depth)
    for id in ids {
        jobs.append(
            Task {
                entered.withLock { $0 += 1 }
                // Admission and parking follow without a suspension point in between.
                _ = try? await queue.runGPUCall(id: id) { _ in started.withLock { $0 += 1 } }
            })
    }
    // Measure from a settled backlog: every caller admitted and parked, the executor idle.
    while entered.withLock({ $0 }) < depth { await Task.yield() }
    try await Task.sleep(for: .milliseconds(100))
    var streams: [TaskUpdates] = []
    var readers: [Task<Int, Never>] = []
    switch mode {
    case .none, .noneFair: break
    case .idle: streams = try ids.map { try queue.updates(of: $0) }
    case .reading, .readingEveryMove, .readingTenths, .readingFair:
        for id in ids {
            let updates = try queue.updates(of: id)
            readers.append(
                Task {
                    var count = 0; for await _ in updates { count += 1 }; return count
                })
        }
        try await Task.sleep(for: .milliseconds(100))  // every reader has read its first status and waits
    }
    // A prober asks the last waiter's status while the line moves.
    let probing = Locked<Bool>(true)
    let prober = Task { () -> [Duration] in
        var latencies: [Duration] = []
        let probe = ids[depth - 1]
        while probing.withLock({ $0 }) {
            let start = ContinuousClock.now
            _ = try? queue.status(of: probe)
            latencies.append(ContinuousClock.now - start)
            await Task.yield()
        }
        return latencies
    }
    let start = ContinuousClock.now
    gate.withLock { $0 = true }
    while started.withLock({ $0 }) < handOffs { await Task.yield() }
    let handOff = (ContinuousClock.now - start) / handOffs
    probing.withLock { $0 = false }
    let latencies = await prober.value.sorted()
    let cancelStart = ContinuousClock.now
    for id in ids { _ = try? queue.cancel(id) }
    try await holder.value
    for job in jobs { await job.value }
    let cancelAll = ContinuousClock.now - cancelStart
    var messages = 0
    for reader in readers { messages += await reader.value }
    blackHole(streams.count)
    let p99 = latencies.isEmpty ? .zero : latencies[min(latencies.count - 1, latencies.count * 99 / 100)]
    return (handOff, cancelAll, p99, readers.isEmpty ? 0 : Double(messages) / Double(readers.count))
}

func registerSubscribedHandOffBenchmarks() {
    for depth in [1_000, 10_000, 100_000] {
        // Every move pushed to 100,000 readers is a round of 100,000 wake-ups per hand-off: left out.
        for mode in SubscriberMode.allCases where depth < 100_000 || mode.configuration.positionUpdateInterval > .zero {
            Benchmark(
                "C5 \(depth) waiting, \(mode.rawValue)",
                configuration: configuration(
                    [
                        Metric.handOffMicroseconds, Metric.cancelAllMilliseconds, Metric.statusP99Microseconds,
                        Metric.messagesPerSubscriber,
                    ],
                    iterations: 3)
            ) { benchmark in
                let result = try await subscribedHandOff(
                    depth: depth, handOffs: depth >= 100_000 ? 20 : 100, mode: mode)
                benchmark.measurement(Metric.handOffMicroseconds, nanoseconds(result.handOff) / 1_000)
                benchmark.measurement(Metric.cancelAllMilliseconds, nanoseconds(result.cancelAll) / 1_000_000)
                benchmark.measurement(Metric.statusP99Microseconds, nanoseconds(result.statusP99) / 1_000)
                benchmark.measurement(Metric.messagesPerSubscriber, Int(result.messages * 100))
            }
        }
    }
}
