/// How a group with fair share serves its waiting calls: keys in turn by weight, caps per key, and priorities.
///
/// Within a key, calls start in arrival order; between keys, in proportion to their weights (start-time fair
/// queueing: each call is tagged with the virtual time at which its key's share lets it start, and calls
/// start in tag order). A key that comes back after the others have built a backlog starts with the current
/// virtual time, so its first call goes ahead of their backlogs, never behind them.
///
/// ```swift
/// let configuration = CallQueue.Configuration(groups: [
///     "gpu": ConcurrencyGroupConfiguration(
///         limit: .one,
///         discipline: .fairShare(FairShare(maxQueuedPerKey: 4, maxRunningPerKey: 1, weights: ["paid": 4])))
/// ])
/// ```
public struct FairShare: Sendable, Hashable {
    /// The weights a key may have: a key of weight 2 gets twice the starts of a key of weight 1 while both
    /// wait.
    public static let weightRange: ClosedRange<Double> = 0.001...1000

    /// Weights by key; a key not listed has ``weightOfKey``'s weight, else ``defaultWeight``.
    public var weights: [FairnessKey: Double]
    /// The weight of a key that neither ``weights`` nor ``weightOfKey`` names, and of calls without a key.
    public var defaultWeight: Double
    /// Computes a key's weight when ``weights`` does not list it. Called once per admitted call, outside the
    /// queue's lock; a weight outside ``weightRange`` refuses the call with
    /// ``CallQueueError/Code/invalidArgument``. Two configurations compare equal when both have a function
    /// or neither has.
    public var weightOfKey: (@Sendable (FairnessKey) -> Double)?
    /// The most calls one key may have waiting; one more is refused with
    /// ``CallQueueError/Code/tooManyQueued``, which names the key and estimates when its next call starts
    /// (``CallQueueError/retryAfter``: answer 429 with `Retry-After`). `nil`: no cap but the group's.
    public var maxQueuedPerKey: Int?
    /// The most calls one key may run at once: the calls of a key at its cap wait, and others pass them.
    /// `nil`: no cap but the group's limit. A batch holds one slot for the key of the call that formed it;
    /// the members it takes in do not count.
    public var maxRunningPerKey: Int?
    /// After this many calls of a higher priority have joined the group's line behind it, a waiting call is
    /// served as if it had ``CallPriority/highest``: the bound on how many later calls may pass a low priority.
    /// Calls of its own priority or lower never raise it.
    public var agingArrivals: Int
    /// Whether statuses (and so observers and update streams) carry the call's key. Off by default: keys can
    /// be personal data.
    public var reportsKeys: Bool

    /// A fair-share discipline; every parameter has the default described on its property.
    public init(
        maxQueuedPerKey: Int? = nil,
        maxRunningPerKey: Int? = nil,
        weights: [FairnessKey: Double] = [:],
        defaultWeight: Double = 1,
        weightOfKey: (@Sendable (FairnessKey) -> Double)? = nil,
        agingArrivals: Int = 100,
        reportsKeys: Bool = false
    ) {
        self.maxQueuedPerKey = maxQueuedPerKey
        self.maxRunningPerKey = maxRunningPerKey
        self.weights = weights
        self.defaultWeight = defaultWeight
        self.weightOfKey = weightOfKey
        self.agingArrivals = agingArrivals
        self.reportsKeys = reportsKeys
    }

    public static func == (lhs: FairShare, rhs: FairShare) -> Bool {
        lhs.weights == rhs.weights && lhs.defaultWeight == rhs.defaultWeight
            && (lhs.weightOfKey == nil) == (rhs.weightOfKey == nil) && lhs.maxQueuedPerKey == rhs.maxQueuedPerKey
            && lhs.maxRunningPerKey == rhs.maxRunningPerKey && lhs.agingArrivals == rhs.agingArrivals
            && lhs.reportsKeys == rhs.reportsKeys
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(weights)
        hasher.combine(defaultWeight)
        hasher.combine(weightOfKey == nil)
        hasher.combine(maxQueuedPerKey)
        hasher.combine(maxRunningPerKey)
        hasher.combine(agingArrivals)
        hasher.combine(reportsKeys)
    }

    /// Throws unless every number is in its range.
    func validate(group: ConcurrencyGroupID) throws {
        func refuse(_ text: String) -> CallQueueError {
            CallQueueError(.invalidArgument, "group '\(group)' fair share: \(text)", group: group)
        }
        try Self.validate(weight: defaultWeight, of: nil, group: group)
        for (key, weight) in weights {
            try key.validate()
            try Self.validate(weight: weight, of: key, group: group)
        }
        if let maxQueuedPerKey, maxQueuedPerKey < 0 {
            throw refuse("maxQueuedPerKey \(maxQueuedPerKey) is negative; use 0 (no call of a key waits) or more")
        }
        if let maxRunningPerKey, maxRunningPerKey < 1 {
            throw refuse("maxRunningPerKey \(maxRunningPerKey) is below 1; use nil for no cap")
        }
        if agingArrivals < 1 {
            throw refuse("agingArrivals \(agingArrivals) is below 1")
        }
    }

    /// The weight of `key`: the table's, else the function's, else the default. Calls user code: never under
    /// a lock.
    func weight(of key: FairnessKey?, group: ConcurrencyGroupID) throws -> Double {
        guard let key else { return defaultWeight }
        if let weight = weights[key] { return weight }
        guard let weightOfKey else { return defaultWeight }
        let weight = weightOfKey(key)
        try Self.validate(weight: weight, of: key, group: group)
        return weight
    }

    static func validate(weight: Double, of key: FairnessKey?, group: ConcurrencyGroupID) throws {
        guard weight.isFinite, weightRange.contains(weight) else {
            let whose = key.map { "key '\($0)'" } ?? "the default weight"
            throw CallQueueError(
                .invalidArgument,
                "group '\(group)' fair share: weight \(weight) of \(whose) is outside "
                    + "\(weightRange.lowerBound)...\(weightRange.upperBound)",
                group: group)
        }
    }

    /// The virtual time one call of a key of `weight` takes: 2^16 per call of weight 1000, so the lightest
    /// weight's stride (about 6.6e10) leaves room for 2.8e8 of its calls before the tags saturate, and tags
    /// start again from zero whenever the group's keys all go idle.
    static func stride(weight: Double) -> UInt64 {
        UInt64((65_536 * weightRange.upperBound / weight).rounded())
    }
}
