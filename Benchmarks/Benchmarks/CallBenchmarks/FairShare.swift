import Benchmark
import CallQueue

// F1: 100,000 jobs waiting on a limit-1 group, spread over 1, 100 and 10,000 fairness keys under fair share,
// beside the same jobs in arrival order: admission per job at growing depth, hand-off per job while the line
// drains, and the p99 of `status(of:)` on waiting jobs while it drains. Plus a million distinct keys, one call
// each: resident memory before and after. F2: one key with 1,000 queued, then 50 keys with one call each:
// their waits in starts (p50, p99), in arrival order and under fair share; Jain's index of the starts among
// five backlogged keys of equal weight, and the shares of three of weights 1, 2, 4.

extension Metric {
    static let admissionNanoseconds = BenchmarkMetric.custom("admission ns", useScalingFactor: false)
    static let drainHandOffNanoseconds = BenchmarkMetric.custom("hand-off ns", useScalingFactor: false)
    static let drainStatusP99Nanoseconds = BenchmarkMetric.custom("status p99 ns", useScalingFactor: false)
    static let rssGrowthMB = BenchmarkMetric.custom("RSS growth MB", useScalingFactor: false)
    static let waitP50 = BenchmarkMetric.custom("wait p50 (starts)", useScalingFactor: false)
    static let waitP99 = BenchmarkMetric.custom("wait p99 (starts)", useScalingFactor: false)
    static let backlogWaitP50 = BenchmarkMetric.custom("backlog ahead p50 (starts)", useScalingFactor: false)
    static let backlogWaitP99 = BenchmarkMetric.custom("backlog ahead p99 (starts)", useScalingFactor: false)
    static let jainIndexPermille = BenchmarkMetric.custom("Jain's index (x1000)", useScalingFactor: false)
    static let sharePermilleOfWeight = BenchmarkMetric.custom("worst share / weight (x1000)", useScalingFactor: false)
}

/// How the F benchmarks lay the jobs out: arrival order, or fair share over `keys` keys.
enum FairLayout: CustomStringConvertible {
    case fifo
    case fair(keys: Int)

    var description: String {
        switch self {
        case .fifo: "arrival order"
        case .fair(let keys): "fair share, \(keys) keys"
        }
    }

    func queue() throws -> CallQueue {
        switch self {
        case .fifo:
            return try CallQueue(configuration: .init(groups: ["gpu": .init(limit: 1)]))
        case .fair:
            return try CallQueue(
                configuration: .init(groups: ["gpu": .init(limit: 1, discipline: .fairShare(FairShare()))]))
        }
    }

    func fairness(of job: Int) -> CallFairness {
        switch self {
        case .fifo: CallFairness()
        case .fair(let keys): CallFairness(key: FairnessKey("client-\(job % keys)"))
        }
    }
}

/// Takes the group's one slot with a job that runs until `gate` is set; returns once it runs.
func holdSlot(of queue: CallQueue, until gate: Locked<Bool>) async throws -> JobHandle<Void> {
    let holder = try queue.submit(group: "gpu") { _ in
        while !gate.withLock({ $0 }) { await Task.yield() }
    }
    while (try? queue.status(of: holder.id))?.state.running == nil { await Task.yield() }
    return holder
}

/// One F1 run: admits `depth` jobs behind a holder, then lets them drain, probing statuses.
func fairShareCost(
    depth: Int, layout: FairLayout
) async throws -> (
    admission: Duration, handOff: Duration, statusP99: Duration
) {
    let queue = try layout.queue()
    let gate = Locked<Bool>(false)
    let started = Locked<Int>(0)
    let holder = try await holdSlot(of: queue, until: gate)
    let ids = (0..<depth).map { TaskID("task(\($0))") }
    let fairness = (0..<depth).map { layout.fairness(of: $0) }
    var handles: [JobHandle<Void>] = []
    handles.reserveCapacity(depth)
    let admissionStart = ContinuousClock.now
    for index in 0..<depth {
        handles.append(
            try queue.submit(id: ids[index], group: "gpu", fairness: fairness[index]) { _ in
                started.withLock { $0 += 1 }
            })
    }
    let admission = (ContinuousClock.now - admissionStart) / depth
    let probing = Locked<Bool>(true)
    let prober = Task { () -> [Duration] in
        var latencies: [Duration] = []
        var probe = depth - 1
        while probing.withLock({ $0 }) {
            let start = ContinuousClock.now
            _ = try? queue.status(of: ids[probe])
            latencies.append(ContinuousClock.now - start)
            probe = probe == 0 ? depth - 1 : probe - 7
            if probe < 0 { probe = depth - 1 }
            await Task.yield()
        }
        return latencies
    }
    let drainStart = ContinuousClock.now
    gate.withLock { $0 = true }
    for handle in handles { _ = await handle.response }
    let handOff = (ContinuousClock.now - drainStart) / depth
    probing.withLock { $0 = false }
    let latencies = await prober.value.sorted()
    _ = await holder.response
    blackHole(started.withLock { $0 })
    let p99 = latencies.isEmpty ? .zero : latencies[min(latencies.count - 1, latencies.count * 99 / 100)]
    return (admission, handOff, p99)
}

/// A million distinct keys, one uncontended call each: how much the process grew.
func millionKeysGrowth() async throws -> Int {
    let queue = try FairLayout.fair(keys: 1).queue()
    for index in 0..<10_000 {
        try await queue.runQueued(group: "gpu", fairness: CallFairness(key: FairnessKey("warm-\(index)"))) {}
    }
    let before = residentMegabytes()
    for index in 0..<1_000_000 {
        try await queue.runQueued(group: "gpu", fairness: CallFairness(key: FairnessKey("visitor-\(index)"))) {}
    }
    return residentMegabytes() - before
}

/// F2: the start order of a backlog of `backlog` calls of one key followed by `newcomers` keys with one call
/// each; returns the newcomers' waits in starts (how many calls started between their admission and theirs), and
/// how many of those were the backlog's, each sorted.
func newcomerWaits(
    layout: FairLayout, backlog: Int, newcomers: Int
) async throws -> (starts: [Int], backlogStarts: [Int]) {
    let queue = try layout.queue()
    let gate = Locked<Bool>(false)
    let order = Locked<[String]>([])
    let holder = try await holdSlot(of: queue, until: gate)
    var handles: [JobHandle<Void>] = []
    let heavy = layout.isFair ? CallFairness(key: "heavy") : CallFairness()
    for index in 0..<backlog {
        handles.append(
            try queue.submit(group: "gpu", fairness: heavy) { _ in order.withLock { $0.append("h\(index)") } })
    }
    for index in 0..<newcomers {
        let fairness = layout.isFair ? CallFairness(key: FairnessKey("new-\(index)")) : CallFairness()
        handles.append(
            try queue.submit(group: "gpu", fairness: fairness) { _ in order.withLock { $0.append("n\(index)") } })
    }
    gate.withLock { $0 = true }
    for handle in handles { _ = await handle.response }
    _ = await holder.response
    let starts = order.withLock { $0 }
    let places = (0..<newcomers).compactMap { index in starts.firstIndex(of: "n\(index)") }
    let backlogAhead = places.map { place in starts[..<place].count { $0.hasPrefix("h") } }
    return (places.sorted(), backlogAhead.sorted())
}

/// F2: keys of `weights`, each with `perKey` calls queued before the line moves; the starts of each key among
/// the first `window` starts.
func backloggedShares(weights: [Double], perKey: Int, window: Int) async throws -> [Int] {
    var table: [FairnessKey: Double] = [:]
    for (index, weight) in weights.enumerated() { table[FairnessKey("k\(index)")] = weight }
    let queue = try CallQueue(
        configuration: .init(groups: ["gpu": .init(limit: 1, discipline: .fairShare(FairShare(weights: table)))]))
    let gate = Locked<Bool>(false)
    let order = Locked<[Int]>([])
    let holder = try await holdSlot(of: queue, until: gate)
    var handles: [JobHandle<Void>] = []
    for _ in 0..<perKey {
        for key in weights.indices {
            handles.append(
                try queue.submit(group: "gpu", fairness: CallFairness(key: FairnessKey("k\(key)"))) { _ in
                    order.withLock { $0.append(key) }
                })
        }
    }
    gate.withLock { $0 = true }
    for handle in handles { _ = await handle.response }
    _ = await holder.response
    let starts = order.withLock { $0 }.prefix(window)
    return weights.indices.map { key in starts.count { $0 == key } }
}

extension FairLayout {
    var isFair: Bool {
        if case .fair = self { return true }
        return false
    }
}

func registerFairShareBenchmarks() {
    for layout in [FairLayout.fifo, .fair(keys: 1), .fair(keys: 100), .fair(keys: 10_000)] {
        Benchmark(
            "F1 100000 waiting, \(layout)",
            configuration: configuration(
                [Metric.admissionNanoseconds, Metric.drainHandOffNanoseconds, Metric.drainStatusP99Nanoseconds],
                iterations: 6)
        ) { benchmark in
            let result = try await fairShareCost(depth: 100_000, layout: layout)
            benchmark.measurement(Metric.admissionNanoseconds, nanoseconds(result.admission))
            benchmark.measurement(Metric.drainHandOffNanoseconds, nanoseconds(result.handOff))
            benchmark.measurement(Metric.drainStatusP99Nanoseconds, nanoseconds(result.statusP99))
        }
    }
    Benchmark(
        "F1 1000000 distinct keys, one call each",
        configuration: configuration([Metric.rssGrowthMB], iterations: 1)
    ) { benchmark in
        benchmark.measurement(Metric.rssGrowthMB, try await millionKeysGrowth())
    }
    for layout in [FairLayout.fifo, .fair(keys: 51)] {
        Benchmark(
            "F2 1000 queued by one key, then 50 keys, \(layout.isFair ? "fair share" : "arrival order")",
            configuration: configuration(
                [Metric.waitP50, Metric.waitP99, Metric.backlogWaitP50, Metric.backlogWaitP99], iterations: 3)
        ) { benchmark in
            let waits = try await newcomerWaits(layout: layout, backlog: 1_000, newcomers: 50)
            func percentile(_ values: [Int], _ fraction: Double) -> Int {
                values[min(values.count - 1, Int(Double(values.count) * fraction))]
            }
            benchmark.measurement(Metric.waitP50, percentile(waits.starts, 0.5))
            benchmark.measurement(Metric.waitP99, percentile(waits.starts, 0.99))
            benchmark.measurement(Metric.backlogWaitP50, percentile(waits.backlogStarts, 0.5))
            benchmark.measurement(Metric.backlogWaitP99, percentile(waits.backlogStarts, 0.99))
        }
    }
    Benchmark(
        "F2 five backlogged keys of equal weight, 1000 starts",
        configuration: configuration([Metric.jainIndexPermille], iterations: 3)
    ) { benchmark in
        let shares = try await backloggedShares(weights: [1, 1, 1, 1, 1], perKey: 400, window: 1_000).map(Double.init)
        let jain =
            shares.reduce(0, +) * shares.reduce(0, +) / (Double(shares.count) * shares.map { $0 * $0 }.reduce(0, +))
        benchmark.measurement(Metric.jainIndexPermille, Int((jain * 1_000).rounded()))
    }
    Benchmark(
        "F2 three backlogged keys of weights 1, 2, 4, 1400 starts",
        configuration: configuration([Metric.sharePermilleOfWeight], iterations: 3)
    ) { benchmark in
        let weights = [1.0, 2, 4]
        let shares = try await backloggedShares(weights: weights, perKey: 800, window: 1_400)
        // Each key's share of the starts over its share of the weights; the one furthest from 1, in permille.
        let worst =
            weights.indices.map { key -> Double in
                (Double(shares[key]) / 1_400) / (weights[key] / 7)
            }.max { abs($0 - 1) < abs($1 - 1) } ?? 0
        benchmark.measurement(Metric.sharePermilleOfWeight, Int((worst * 1_000).rounded()))
    }
}
