import Benchmark
import CallQueue
import Foundation

// C6: a soak of many calls through a limit-2 group with subscribers reading every status, bodies that
// throw, and cancels by id. Memory must stay flat, no reader may see an older status after a newer one,
// and nothing may be live at the end. CALLQUEUE_SOAK_CALLS sets the count (1,000,000 by default).

extension Metric {
    static let staleStatuses = BenchmarkMetric.custom("stale statuses seen", useScalingFactor: false)
    static let liveAtEnd = BenchmarkMetric.custom("live tasks at end", useScalingFactor: false)
    static let rssFirstTenthMB = BenchmarkMetric.custom("RSS after 10% MB", useScalingFactor: false)
    static let rssEndMB = BenchmarkMetric.custom("RSS at end MB", useScalingFactor: false)
    static let callsPerSecond = BenchmarkMetric.custom("calls per s", useScalingFactor: false)
}

/// Resident memory of this process, from /proc (0 where there is none).
func residentMegabytes() -> Int {
    // /proc files report a size of 0, so read them as a stream rather than by their size.
    guard let file = FileHandle(forReadingAtPath: "/proc/self/statm"),
        let data = try? file.readToEnd(), let statm = String(data: data, encoding: .utf8)
    else { return 0 }
    try? file.close()
    let fields = statm.split(separator: " ")
    guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
    return (pages * Int(sysconf(Int32(_SC_PAGESIZE)))) >> 20
}

struct SoakFigures {
    var stale = 0
    var live = 0
    var rssAtTenth = 0
    var rssAtEnd = 0
    var callsPerSecond = 0
}

func soak(calls: Int, workers: Int = 64) async throws -> SoakFigures {
    let queue = try CallQueue(configuration: .init(groups: ["gpu": .init(limit: 2)]))
    let stale = Locked<Int>(0)
    let done = Locked<Int>(0)
    let rssAtTenth = Locked<Int>(0)
    let start = ContinuousClock.now
    try await withThrowingTaskGroup(of: Void.self) { group in
        for worker in 0..<workers {
            group.addTask {
                var index = worker
                while index < calls {
                    let id = TaskID("task(soak-\(index))")
                    let fails = index % 10 == 3
                    let value = index
                    let job = try queue.submit(id: id, group: "gpu") { context -> Int in
                        context.report(fraction: 0.5)
                        if fails { throw CallQueueError(.invalidArgument, "failing on purpose") }
                        return value
                    }
                    var reader: Task<Int, Never>?
                    if index % 4 == 0 {
                        let updates = try job.updates()
                        reader = Task {
                            var staleSeen = 0
                            var last: UInt64 = 0
                            for await status in updates {
                                if status.version < last { staleSeen += 1 }
                                last = status.version
                            }
                            return staleSeen
                        }
                    }
                    if index % 10 == 7 { job.cancel() }
                    _ = try? await job.value
                    if let reader {
                        let seen = await reader.value
                        stale.withLock { $0 += seen }
                    }
                    let finished = done.withLock { value -> Int in
                        value += 1
                        return value
                    }
                    if finished == calls / 10 { rssAtTenth.withLock { $0 = residentMegabytes() } }
                    index += workers
                }
            }
        }
        try await group.waitForAll()
    }
    let elapsed = ContinuousClock.now - start
    return SoakFigures(
        stale: stale.withLock { $0 },
        live: queue.liveTasks.count,
        rssAtTenth: rssAtTenth.withLock { $0 },
        rssAtEnd: residentMegabytes(),
        callsPerSecond: Int(Double(calls) / max(elapsed / .milliseconds(1), 1) * 1_000)
    )
}

func registerSoakBenchmark() {
    let calls = ProcessInfoLite.integer("CALLQUEUE_SOAK_CALLS") ?? 1_000_000
    Benchmark(
        "C6 soak, \(calls) calls",
        configuration: configuration(
            [Metric.staleStatuses, Metric.liveAtEnd, Metric.rssFirstTenthMB, Metric.rssEndMB, Metric.callsPerSecond],
            iterations: 1)
    ) { benchmark in
        let figures = try await soak(calls: calls)
        benchmark.measurement(Metric.staleStatuses, figures.stale)
        benchmark.measurement(Metric.liveAtEnd, figures.live)
        benchmark.measurement(Metric.rssFirstTenthMB, figures.rssAtTenth)
        benchmark.measurement(Metric.rssEndMB, figures.rssAtEnd)
        benchmark.measurement(Metric.callsPerSecond, figures.callsPerSecond)
    }
}

enum ProcessInfoLite {
    static func integer(_ name: String) -> Int? {
        ProcessInfo.processInfo.environment[name].flatMap { Int($0) }
    }
}
