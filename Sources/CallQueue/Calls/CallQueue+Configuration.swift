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
        /// A queued call's status tells whether its group or this limit holds it. Not with cluster-wide groups
        /// (``permitSources``), whose slots the cluster grants: that combination is refused.
        public var processWideLimit: Int?
        /// How many finished tasks stay queryable by id (AUTOMATIC1111 keeps 16).
        public var finishedTaskHistory = 16
        /// How many results of succeeded tasks stay queryable by id (AUTOMATIC1111 keeps 2).
        public var resultHistory = 2
        /// How long a finished call stays queryable by id, however few have finished since; see
        /// ``TaskLifecycle/Configuration/finishedTaskMaxAge``. `nil` (the default): by count only.
        public var finishedTaskMaxAge: Duration?
        /// The most bytes of results kept; see ``TaskLifecycle/Configuration/resultHistoryBytes``. `nil`: no
        /// budget.
        public var resultHistoryBytes: Int?
        /// The run time assumed for a group before any of its calls has finished, so that the first
        /// ETA is never missing.
        public var initialRunTimeEstimate: Duration = .seconds(10)
        /// Receives the queue's events.
        public var observer: (any CallQueueObserver)?
        /// Samples the device's memory while GPU jobs run; their ``PerfStats`` then carry the peaks of
        /// each job's own run. `nil`: time only. With ``deviceSamplers`` set, those are used instead.
        public var memorySampler: MemorySampler?
        /// One sampler per device, by device index: a call's ``PerfStats`` carry the peaks of the device its
        /// slot runs on (``ConcurrencyGroupConfiguration/devices``; by default slot k on device k), read by
        /// that device's one sampler whatever the number of calls on it. Empty: ``memorySampler`` serves
        /// every slot. ``MemorySampler/forEachDevice(pollRate:nvmlLibraryPath:)`` makes one per GPU.
        public var deviceSamplers: [MemorySampler] = []
        /// How long a shutdown (``CallQueue/run()``, ``CallQueue/shutdown(gracePeriod:)``) lets running calls
        /// finish before it cancels them.
        public var shutdownGracePeriod: Duration = .seconds(30)
        /// What a call naming an undeclared group gets: a group with ``defaultLimit`` (freed again when
        /// idle), or a ``CallQueueError/Code/unknownGroup`` error.
        public var undeclaredGroups: UndeclaredGroupPolicy = .defaultLimit
        /// The least time between two position updates to one subscriber of ``CallQueue/updates(of:)``
        /// (Gradio's `status_update_rate`); start, progress and finish are delivered at once. `.zero`: every
        /// change at once.
        public var positionUpdateInterval: Duration = .milliseconds(250)
        /// How far a waiting call must move before subscribers of ``CallQueue/updates(of:)`` hear of it, as a
        /// fraction of the place they were last told (at least one place): see
        /// ``TaskLifecycle/Configuration/positionUpdateFraction``. 0 (the default): every change. In 0..<1.
        public var positionUpdateFraction: Double = 0
        /// How much of each call's partial outputs (``CallContext/emitChunk(_:)``,
        /// ``CallContext/emitLatest(_:)``) is kept for its readers, whatever they do.
        public var partialOutputs = PartialOutputLimits()
        /// The clock of the task lifecycle and of deadlines; tests inject a manual one.
        public var clock: LifecycleClock = .continuous
        /// Cluster-wide groups: where each one's slots come from (a ``ClusterPermitSource`` shared by several
        /// replicas, such as `PostgresPermitSource`). Each must be declared in ``groups`` with a limit (its
        /// slots, for ETAs) and no budget. Its ``ConcurrencyGroupConfiguration/maxQueueSize`` bounds the calls
        /// waiting on this replica; positions and queue sizes in statuses are cluster-wide.
        public var permitSources: [ConcurrencyGroupID: any ClusterPermitSource] = [:]

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
            finishedTaskMaxAge: Duration? = nil,
            resultHistoryBytes: Int? = nil,
            initialRunTimeEstimate: Duration = .seconds(10),
            observer: (any CallQueueObserver)? = nil,
            memorySampler: MemorySampler? = nil,
            deviceSamplers: [MemorySampler] = [],
            undeclaredGroups: UndeclaredGroupPolicy = .defaultLimit,
            positionUpdateInterval: Duration = .milliseconds(250),
            positionUpdateFraction: Double = 0,
            partialOutputs: PartialOutputLimits = PartialOutputLimits(),
            clock: LifecycleClock = .continuous,
            permitSources: [ConcurrencyGroupID: any ClusterPermitSource] = [:],
            shutdownGracePeriod: Duration = .seconds(30)
        ) {
            self.shutdownGracePeriod = shutdownGracePeriod
            self.defaultLimit = defaultLimit
            self.groups = groups
            self.maxQueueSize = maxQueueSize
            self.defaultMaxQueueSize = defaultMaxQueueSize
            self.maxEstimatedWait = maxEstimatedWait
            self.processWideLimit = processWideLimit
            self.finishedTaskHistory = finishedTaskHistory
            self.resultHistory = resultHistory
            self.finishedTaskMaxAge = finishedTaskMaxAge
            self.resultHistoryBytes = resultHistoryBytes
            self.initialRunTimeEstimate = initialRunTimeEstimate
            self.observer = observer
            self.memorySampler = memorySampler
            self.deviceSamplers = deviceSamplers
            self.undeclaredGroups = undeclaredGroups
            self.positionUpdateInterval = positionUpdateInterval
            self.positionUpdateFraction = positionUpdateFraction
            self.partialOutputs = partialOutputs
            self.clock = clock
            self.permitSources = permitSources
        }

        /// The largest limit, budget or process-wide limit accepted: 2^32. Above that no server has the
        /// hardware, and sums of weights could overflow.
        public static let maximumCount = 1 << 32

        func validated() throws -> Configuration {
            try Self.check(limit: defaultLimit, for: "(default)")
            if let size = defaultMaxQueueSize, size < 0 {
                throw CallQueueError(.invalidArgument, "defaultMaxQueueSize \(size) is negative")
            }
            for (id, group) in groups {
                try Self.check(limit: group.limit, for: "'\(id)'")
                if let devices = group.devices {
                    guard !devices.isEmpty, devices.allSatisfy({ deviceSamplers.indices.contains($0) }) else {
                        throw CallQueueError(
                            .invalidArgument,
                            "devices \(devices) for group '\(id)' must name devices in 0..<\(deviceSamplers.count), "
                                + "the indices of deviceSamplers",
                            group: id)
                    }
                }
                if let size = group.maxQueueSize, size < 0 {
                    throw CallQueueError(
                        .invalidArgument, "maxQueueSize \(size) for group '\(id)' is negative", group: id)
                }
                try group.discipline.fairShare?.validate(group: id)
                if let budget = group.budget, budget < 1 || budget > Self.maximumCount {
                    throw CallQueueError(
                        .invalidArgument, "budget \(budget) for group '\(id)' must be in 1...\(Self.maximumCount)",
                        group: id)
                }
            }
            if let limit = processWideLimit, limit < 1 || limit > Self.maximumCount {
                throw CallQueueError(
                    .invalidArgument, "processWideLimit \(limit) must be in 1...\(Self.maximumCount)")
            }
            if let size = maxQueueSize, size < 0 {
                throw CallQueueError(.invalidArgument, "maxQueueSize \(size) is negative")
            }
            if shutdownGracePeriod < .zero {
                throw CallQueueError(.invalidArgument, "shutdownGracePeriod \(shutdownGracePeriod) is negative")
            }
            if let wait = maxEstimatedWait, wait < .zero {
                throw CallQueueError(.invalidArgument, "maxEstimatedWait \(wait) is negative")
            }
            if processWideLimit != nil, !permitSources.isEmpty {
                throw CallQueueError(
                    .invalidArgument,
                    "processWideLimit cannot be combined with cluster-wide groups (permitSources): their slots are "
                        + "granted by the cluster, not by this process; give the cluster-wide groups their own limits")
            }
            for id in permitSources.keys {
                guard let group = groups[id], case .limited = group.limit, group.budget == nil else {
                    throw CallQueueError(
                        .invalidArgument,
                        "cluster-wide group '\(id)' must be declared in groups with a limit (its slots) and no budget",
                        group: id)
                }
            }
            for id in permitSources.keys where groups[id]?.discipline.fairShare != nil {
                throw CallQueueError(
                    .invalidArgument,
                    "cluster-wide group '\(id)' cannot use fair share: replicas would each order their own calls, "
                        + "and no replica could tell a call its place; declare it with the .fifo discipline",
                    group: id)
            }
            _ = try lifecycleConfiguration.validated()
            return self
        }

        private static func check(limit: ConcurrencyLimit, for group: String) throws {
            if case .limited(let count) = limit, count < 1 || count > maximumCount {
                throw CallQueueError(
                    .invalidArgument,
                    "concurrency limit \(count) for group \(group): a limit is in 1...\(maximumCount) or .unlimited"
                )
            }
        }

        var lifecycleConfiguration: TaskLifecycle.Configuration {
            TaskLifecycle.Configuration(
                finishedTaskHistory: finishedTaskHistory,
                resultHistory: resultHistory,
                finishedTaskMaxAge: finishedTaskMaxAge,
                resultHistoryBytes: resultHistoryBytes,
                initialRunTimeEstimate: initialRunTimeEstimate,
                positionUpdateInterval: positionUpdateInterval,
                positionUpdateFraction: positionUpdateFraction,
                partialOutputs: partialOutputs,
                clock: clock,
                observer: observer
            )
        }

        var scheduling: LifecycleState.Scheduling {
            LifecycleState.Scheduling(
                groups: groups,
                defaultGroup: ConcurrencyGroupConfiguration(limit: defaultLimit, maxQueueSize: defaultMaxQueueSize),
                undeclaredGroups: undeclaredGroups,
                maxQueueSize: maxQueueSize,
                maxEstimatedWait: maxEstimatedWait,
                processWideLimit: processWideLimit,
                permitSources: permitSources
            )
        }
    }

    /// What a call naming a group that ``Configuration/groups`` does not declare gets.
    public enum UndeclaredGroupPolicy: Sendable, Hashable {
        /// A group with ``Configuration/defaultLimit`` and ``Configuration/defaultMaxQueueSize``, made on
        /// first use and freed when nothing waits, runs or watches in it (Gradio's behaviour).
        case defaultLimit
        /// ``CallQueueError/Code/unknownGroup``: every group must be declared.
        case reject
    }
}

extension CallQueue {
    /// The sampler of the device a call in `slot` of `group` runs on: its device's with ``Configuration/deviceSamplers``,
    /// else the one ``Configuration/memorySampler``.
    func memorySampler(group: ConcurrencyGroupID, slot: Int) -> MemorySampler? {
        let samplers = configuration.deviceSamplers
        guard !samplers.isEmpty else { return configuration.memorySampler }
        let declared = configuration.groups[group] ?? ConcurrencyGroupConfiguration(limit: configuration.defaultLimit)
        return declared.device(ofSlot: slot, deviceCount: samplers.count).map { samplers[$0] }
    }
}
