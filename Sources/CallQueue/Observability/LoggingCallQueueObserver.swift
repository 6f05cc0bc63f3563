#if Logging
    import Logging

    /// Writes a ``CallQueue``'s events to a swift-log `Logger` that the application passes in (the library
    /// never makes a logger of its own). Available with the package trait `Logging`.
    ///
    /// Queued tasks are logged at `debug`, starts and finishes at `info`, failed tasks at `warning`, and
    /// failed calls, with their arguments, at `error` ("Error completing request", as AUTOMATIC1111 logs it).
    /// Every entry carries the task id and group as metadata, and finishes their times in seconds.
    ///
    /// ```swift
    /// let queue = try CallQueue(configuration: .init(observer: LoggingCallQueueObserver(logger: logger)))
    /// ```
    public struct LoggingCallQueueObserver: CallQueueObserver {
        /// The logger events go to.
        public var logger: Logger

        public init(logger: Logger) {
            self.logger = logger
        }

        public func taskDidChange(_ status: TaskStatus) {
            var metadata: Logger.Metadata = ["task": "\(status.id)", "group": "\(status.group)"]
            switch status.state {
            case .queued(let queued):
                metadata["position"] = "\(queued.position)"
                metadata["queue_size"] = "\(queued.queueSize)"
                metadata["held_by"] = "\(queued.heldBy.rawValue)"
                metadata["eta_s"] = "\(cFormat("%.3f", queued.eta.seconds))"
                logger.debug("task queued", metadata: metadata)
            case .running(let running):
                metadata["slot"] = "\(running.slot)"
                logger.info("task started", metadata: metadata)
            case .finished(let finished):
                metadata["queued_s"] = "\(cFormat("%.3f", finished.queuedFor.seconds))"
                metadata["ran_s"] = "\(cFormat("%.3f", finished.ranFor.seconds))"
                switch finished.outcome {
                case .succeeded:
                    logger.info("task succeeded", metadata: metadata)
                case .cancelled:
                    logger.info("task cancelled", metadata: metadata)
                case .failed(let message):
                    metadata["error"] = "\(message)"
                    logger.warning("task failed", metadata: metadata)
                }
            }
        }

        public func callDidFail(_ report: CallFailureReport) {
            var metadata: Logger.Metadata = [
                "error_type": "\(report.errorType)",
                "error": "\(report.message)",
                "arguments": "\(report.arguments)",
            ]
            if let taskID = report.taskID { metadata["task"] = "\(taskID)" }
            logger.error("Error completing request", metadata: metadata)
        }

        public func batchDidRun(group: ConcurrencyGroupID, size: Int, stats: PerfStats) {
            logger.debug(
                "batch ran",
                metadata: ["group": "\(group)", "size": "\(size)", "ran_seconds": "\(stats.running.seconds)"])
        }
    }
#endif
