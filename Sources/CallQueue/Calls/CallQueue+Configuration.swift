extension CallQueue {
    /// How a ``CallQueue`` behaves. Every limit is declared here, once, on the groups.
    public struct Configuration: Sendable {
        /// The limit of groups that are not declared in ``groups``: one call at a time unless set.
        public var defaultLimit: ConcurrencyLimit = .one
        /// The queue size of groups that do not set their own; `nil`: unbounded.
        public var defaultMaxQueueSize: Int?
        /// The declared groups. Several call sites share a group by naming the same id.
        public var groups: [ConcurrencyGroupID: ConcurrencyGroupConfiguration] = [:]
        /// The most calls waiting in all groups together; `nil`: unbounded.
        public var maxQueueSize: Int?
        /// A call whose estimated wait is longer than this is rejected at once; `nil`: never.
        public var maxEstimatedWait: Duration?
        /// A limit on calls running at once across all groups, on top of each group's; `nil`: none.
        /// A queued call's status tells whether its group or this limit holds it.
        public var processWideLimit: Int?
        /// How many finished tasks stay queryable by id (AUTOMATIC1111 keeps 16).
        public var finishedTaskHistory = 16
        /// How many results of succeeded tasks stay queryable by id (AUTOMATIC1111 keeps 2).
        public var resultHistory = 2
        /// The run time assumed for a group before any of its calls has finished, so that the first
        /// ETA is never missing.
        public var initialRunTimeEstimate: Duration = .seconds(10)
        /// Receives the queue's events.
        public var observer: (any CallQueueObserver)?
        /// Samples the device's memory while GPU jobs run; their ``PerfStats`` then carry the peaks of
        /// each job's own run. `nil`: time only.
        public var memorySampler: MemorySampler?

        /// A configuration; every parameter has the default described on its property.
        public init(
            defaultLimit: ConcurrencyLimit = .one,
            groups: [ConcurrencyGroupID: ConcurrencyGroupConfiguration] = [:],
            maxQueueSize: Int? = nil,
            defaultMaxQueueSize: Int? = nil,
            maxEstimatedWait: Duration? = nil,
            processWideLimit: Int? = nil,
            finishedTaskHistory: Int = 16,
            resultHistory: Int = 2,
            initialRunTimeEstimate: Duration = .seconds(10),
            observer: (any CallQueueObserver)? = nil,
            memorySampler: MemorySampler? = nil
        ) {
            self.defaultLimit = defaultLimit
            self.groups = groups
            self.maxQueueSize = maxQueueSize
            self.defaultMaxQueueSize = defaultMaxQueueSize
            self.maxEstimatedWait = maxEstimatedWait
            self.processWideLimit = processWideLimit
            self.finishedTaskHistory = finishedTaskHistory
            self.resultHistory = resultHistory
            self.initialRunTimeEstimate = initialRunTimeEstimate
            self.observer = observer
            self.memorySampler = memorySampler
        }

        /// The configuration of a group: its declaration, or the defaults.
        func configuration(of group: ConcurrencyGroupID) -> ConcurrencyGroupConfiguration {
            groups[group] ?? ConcurrencyGroupConfiguration(limit: defaultLimit, maxQueueSize: defaultMaxQueueSize)
        }

        func validated() throws -> Configuration {
            _ = try defaultLimit.validated(for: "(default)")
            for (id, group) in groups {
                _ = try group.limit.validated(for: id)
                if let size = group.maxQueueSize, size < 0 {
                    throw CallQueueError(.invalidArgument, "maxQueueSize \(size) for group '\(id)' is negative")
                }
                if let budget = group.budget, budget < 1 {
                    throw CallQueueError(.invalidArgument, "budget \(budget) for group '\(id)' must be positive")
                }
            }
            if let limit = processWideLimit, limit < 1 {
                throw CallQueueError(.invalidArgument, "processWideLimit \(limit) must be positive")
            }
            if let size = maxQueueSize, size < 0 {
                throw CallQueueError(.invalidArgument, "maxQueueSize \(size) is negative")
            }
            if finishedTaskHistory < 0 || resultHistory < 0 {
                throw CallQueueError(.invalidArgument, "history sizes must not be negative")
            }
            return self
        }
    }
}
