#if Metrics
    import CoreMetrics

    /// Reports a ``CallQueue`` to swift-metrics: how many calls wait and run per group (meters), how long
    /// they waited and ran (timers), how many failed (a counter), and each GPU job's system memory peak (a
    /// gauge per group and device). Available with the package trait `Metrics`.
    ///
    /// Every metric has a `group` dimension. Metrics go to `factory`, the process's bootstrapped
    /// `MetricsSystem.factory` unless another is given (tests pass `MetricsTestKit`'s `TestMetrics`).
    ///
    /// ```swift
    /// let queue = try CallQueue(configuration: .init(observer: MetricsCallQueueObserver()))
    /// ```
    public struct MetricsCallQueueObserver: CallQueueObserver {
        /// Calls waiting for their turn (meter).
        public static let waitingLabel = "call_queue_waiting"
        /// Calls running (meter).
        public static let runningLabel = "call_queue_running"
        /// Time from queued to started, or to leaving the queue (timer).
        public static let waitTimeLabel = "call_queue_wait_duration"
        /// Time from started to finished (timer).
        public static let runTimeLabel = "call_queue_run_duration"
        /// Calls that failed (counter); cancellations are not failures.
        public static let errorsLabel = "call_queue_errors"
        /// A GPU job's system memory peak in bytes (gauge), with a `device` dimension as well.
        public static let memoryLabel = "call_queue_memory_peak_bytes"
        /// Members per batch of a ``Batcher`` (recorder, aggregated: a histogram).
        public static let batchSizeLabel = "call_queue_batch_size"

        private let factory: any MetricsFactory

        public init(factory: any MetricsFactory = MetricsSystem.factory) {
            self.factory = factory
        }

        public func taskDidChange(_ status: TaskStatus) {
            let dimensions = [("group", status.group.name)]
            let waiting = Meter(label: Self.waitingLabel, dimensions: dimensions, factory: factory)
            let running = Meter(label: Self.runningLabel, dimensions: dimensions, factory: factory)
            switch status.state {
            case .queued:
                waiting.increment()
            case .running:
                waiting.decrement()
                running.increment()
            case .finished(let finished):
                if finished.started {
                    running.decrement()
                    Timer(label: Self.runTimeLabel, dimensions: dimensions, factory: factory)
                        .recordNanoseconds(Self.nanoseconds(finished.ranFor))
                } else {
                    waiting.decrement()
                }
                Timer(label: Self.waitTimeLabel, dimensions: dimensions, factory: factory)
                    .recordNanoseconds(Self.nanoseconds(finished.queuedFor))
                if case .failed = finished.outcome {
                    Counter(label: Self.errorsLabel, dimensions: dimensions, factory: factory).increment()
                }
            }
        }

        public func callDidFinish(taskID: TaskID, group: ConcurrencyGroupID, stats: PerfStats) {
            guard let memory = stats.memory else { return }
            let dimensions = [("group", group.name), ("device", "\(memory.device.kind)-\(memory.device.index)")]
            Gauge(label: Self.memoryLabel, dimensions: dimensions, factory: factory).record(Int64(memory.systemPeak))
        }

        public func batchDidRun(group: ConcurrencyGroupID, size: Int, stats: PerfStats) {
            Recorder(
                label: Self.batchSizeLabel, dimensions: [("group", group.name)], aggregate: true, factory: factory
            ).record(size)
        }

        private static func nanoseconds(_ duration: Duration) -> Int64 {
            let parts = duration.components
            return parts.seconds * 1_000_000_000 + parts.attoseconds / 1_000_000_000
        }
    }
#endif
