import CallQueue
import Foundation

/// The demo's final report: every task's outcome and cost, and a summary.
struct Report: Encodable {
    struct Entry: Encodable {
        var id: String
        var group: String
        var outcome: String
        var queuedSeconds: Double
        var ranSeconds: Double
        var stats: PerfStats
    }

    struct Summary: Encodable {
        var tasks: Int
        var succeeded: Int
        var failed: Int
        var cancelled: Int
        var wallSeconds: Double
        var imagesPerSecond: Double
        var waitSeconds: Percentiles
        var runSeconds: Percentiles
        var gpuSlots: Int
        var memoryMonitor: String
        var memoryMonitorReason: String?
    }

    struct Percentiles: Encodable {
        var p50: Double
        var p90: Double
        var max: Double

        init(_ values: [Double]) {
            let sorted = values.sorted()
            func at(_ fraction: Double) -> Double {
                sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int(Double(sorted.count) * fraction))]
            }
            p50 = at(0.5)
            p90 = at(0.9)
            max = sorted.last ?? 0
        }
    }

    var entries: [Entry]
    var summary: Summary

    init(
        responses: [(SimulatedServer.Request, CallResponse<String>)],
        wallTime: Duration,
        gpuSlots: Int,
        monitor: DeviceMonitorSelection
    ) {
        entries = responses.map { request, response in
            let outcome =
                response.succeeded
                ? "succeeded" : response.wasCancelled ? "cancelled" : "failed: \(response.failure!.text)"
            return Entry(
                id: request.id.rawValue,
                group: request.group.name,
                outcome: outcome,
                queuedSeconds: response.stats.queued.inSeconds,
                ranSeconds: response.stats.running.inSeconds,
                stats: response.stats
            )
        }
        let succeeded = responses.filter { $0.1.succeeded }.count
        let cancelled = responses.filter { $0.1.wasCancelled }.count
        summary = Summary(
            tasks: responses.count,
            succeeded: succeeded,
            failed: responses.count - succeeded - cancelled,
            cancelled: cancelled,
            wallSeconds: wallTime.inSeconds,
            imagesPerSecond: Double(succeeded) / max(wallTime.inSeconds, 0.001),
            waitSeconds: Percentiles(entries.map(\.queuedSeconds)),
            runSeconds: Percentiles(entries.filter { $0.ranSeconds > 0 }.map(\.ranSeconds)),
            gpuSlots: gpuSlots,
            memoryMonitor: monitor.monitor.device.description,
            memoryMonitorReason: monitor.nvmlFailure.map { "NVML is not available: \($0)" }
        )
    }

    func printText() {
        print("\ntasks:")
        for entry in entries {
            print("  \(entry.id) \(entry.group): \(entry.outcome); \(entry.stats.plainText)")
        }
        let s = summary
        print(
            """

            summary:
              \(s.tasks) tasks: \(s.succeeded) succeeded, \(s.failed) failed, \(s.cancelled) cancelled, \
            in \(format(s.wallSeconds)) s (\(format(s.imagesPerSecond)) results per second)
              wait p50 \(format(s.waitSeconds.p50)) s, p90 \(format(s.waitSeconds.p90)) s, max \(format(s.waitSeconds.max)) s
              run  p50 \(format(s.runSeconds.p50)) s, p90 \(format(s.runSeconds.p90)) s, max \(format(s.runSeconds.max)) s
              \(batchLine)memory monitor: \(s.memoryMonitor)\(s.memoryMonitorReason.map { ", because \($0)" } ?? "")
            """
        )
    }

    func json() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data = (try? encoder.encode(self)) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    private func format(_ value: Double) -> String { String(format: "%.2f", value) }

    /// The batch sizes members saw, when any call ran in a batch.
    private var batchLine: String {
        let sizes = entries.compactMap(\.stats.batchSize)
        guard !sizes.isEmpty else { return "" }
        var counts: [Int: Int] = [:]
        for size in sizes { counts[size, default: 0] += 1 }
        let text = counts.keys.sorted().map { "\($0): \(counts[$0]!)" }.joined(separator: ", ")
        return "batch sizes (members per size) \(text)\n  "
    }
}

extension Duration {
    var inSeconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
