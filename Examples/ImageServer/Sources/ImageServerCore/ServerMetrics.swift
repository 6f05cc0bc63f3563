import CallQueue
import CoreMetrics
import Prometheus

/// The server's metrics in Prometheus' text format, for `GET /metrics`: the library's
/// `MetricsCallQueueObserver` (calls waiting and running per group, wait and run time histograms, failures,
/// the GPU memory peak of each job) and the server's own refusals by code, all in one registry of this
/// server's (not the process's global metrics system, so two servers in one test process do not mix).
public struct ServerMetrics: Sendable {
    /// Requests the queue refused (counter), with a `code` dimension: `tooManyQueued`, `queueFull`, ...
    public static let refusalsLabel = "imageserver_refusals"

    let registry = PrometheusCollectorRegistry()
    let factory: any MetricsFactory

    init() {
        var factory = PrometheusMetricsFactory(registry: registry)
        // Jobs take seconds: buckets from 10 ms to 10 minutes.
        factory.defaultDurationHistogramBuckets = [
            .milliseconds(10), .milliseconds(50), .milliseconds(100), .milliseconds(500), .seconds(1), .seconds(2),
            .seconds(5), .seconds(10), .seconds(30), .seconds(60), .seconds(120), .seconds(600),
        ]
        self.factory = factory
    }

    /// What the queue reports to, through the library's `Metrics` trait.
    var observer: MetricsCallQueueObserver { MetricsCallQueueObserver(factory: factory) }

    /// Counts one refusal of the queue's, by its code.
    func refused(_ error: CallQueueError) {
        Counter(label: Self.refusalsLabel, dimensions: [("code", "\(error.code)")], factory: factory).increment()
    }

    /// Every series, in Prometheus' text exposition format.
    public func render() -> [UInt8] {
        registry.emitToBuffer()
    }
}
