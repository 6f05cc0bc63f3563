/// A line in fair share between keys: FIFO within a key, keys in proportion to their weights (start-time fair
/// queueing), strict priority levels with aging, and caps on each key's waiting and running calls.
///
/// - A call's place is `(level, tag, ticket)`: higher levels first, then the virtual start tag, then arrival.
///   The tag is `max(virtual time, the key's last finish)`, and the key's last finish grows by the call's
///   stride (``FairShare/stride(weight:)``); the virtual time is the largest tag started so far. Tags start
///   again from zero whenever no key has a call waiting or running.
/// - The head is the first call in that order whose key is under its running cap; calls of a capped key are
///   passed.
/// - ``place(of:)`` counts the calls ahead in that order, capped keys' calls included: the calls that start
///   first if nobody arrives or leaves and no key is held at its cap. O(log n): the order is an
///   ``OrderStatisticTree``.
/// - After ``FairShare/agingArrivals`` calls of a higher level have joined the line behind it, a call below
///   the top level rises to it, keeping its tag. Calls of its own level or lower never raise it: within a level,
///   fair share alone decides.
///
/// A key's table (its tags, counts and calls) is freed when its last call leaves, waiting or running.
struct FairShareLine<Entry>: LineDiscipline {
    /// Where a call stands: the smaller place starts first.
    struct Place: Comparable, Sendable {
        /// `CallPriority.highest.level - level`: 0 for the top level.
        var rank: Int
        var tag: UInt64
        var ticket: UInt64

        static func < (lhs: Place, rhs: Place) -> Bool {
            if lhs.rank != rhs.rank { return lhs.rank < rhs.rank }
            if lhs.tag != rhs.tag { return lhs.tag < rhs.tag }
            return lhs.ticket < rhs.ticket
        }
    }

    private struct Call {
        var waiter: LineWaiter<Entry>
        var place: Place
        var key: FairnessKey?
    }

    private struct KeyState {
        /// The key's waiting calls in order; kept only where a cap needs them (``tracksKeyOrder``).
        var waiting = OrderStatisticTree<Place>()
        var waitingCount = 0
        var running = 0
        var lastFinish: UInt64 = 0
    }

    let maxQueuedPerKey: Int?
    let maxRunningPerKey: Int?
    let agingArrivals: UInt64
    /// Whether each key keeps its calls in order: for its head under a running cap, and for the place of its
    /// next call when its queued cap refuses one.
    private let tracksKeyOrder: Bool

    private var order = OrderStatisticTree<Place>()
    /// With a running cap: the first waiting call of each key under its cap. The head is the smallest.
    private var eligible = OrderStatisticTree<Place>()
    private var calls: [UInt64: Call] = [:]
    private var keys: [FairnessKey?: KeyState] = [:]
    /// Calls started from this line (or without waiting), by ticket: whose running count they hold.
    private var runningKeys: [UInt64: FairnessKey?] = [:]
    private var virtualTime: UInt64 = 0
    /// For each level below the top, the clock of its aging: how many calls of a higher level have joined the
    /// line so far.
    private var arrivalsAbove = [UInt64](repeating: 0, count: CallPriority.highest.level)
    /// For each level below the top, its calls in arrival order with the clock at which each joined; entries
    /// of calls that left are skipped when they come up.
    private var aging = [[(ticket: UInt64, mark: UInt64)]](repeating: [], count: CallPriority.highest.level)
    private var agingHeads = [Int](repeating: 0, count: CallPriority.highest.level)

    init(_ configuration: FairShare) {
        maxQueuedPerKey = configuration.maxQueuedPerKey
        maxRunningPerKey = configuration.maxRunningPerKey
        agingArrivals = UInt64(max(1, configuration.agingArrivals))
        tracksKeyOrder = configuration.maxQueuedPerKey != nil || configuration.maxRunningPerKey != nil
    }

    var count: Int { calls.count }
    var isEmpty: Bool { calls.isEmpty }

    var head: LineWaiter<Entry>? {
        let first = maxRunningPerKey == nil ? order.min : eligible.min
        guard let first else { return nil }
        return calls[first.ticket]?.waiter
    }

    @discardableResult
    mutating func enqueue(ticket: UInt64, weight: Int, order lineOrder: LineOrder, entry: Entry) -> [UInt64] {
        let key = lineOrder.key
        let before = eligibleHead(of: key)
        let now = virtualTime
        let tracks = tracksKeyOrder
        let place = modifyKey(key) { state -> Place in
            let start = max(now, state.lastFinish)
            state.lastFinish = Self.adding(lineOrder.stride, to: start)
            let place = Place(rank: CallPriority.highest.level - lineOrder.level, tag: start, ticket: ticket)
            if tracks { state.waiting.insert(place) }
            state.waitingCount += 1
            return place
        }
        order.insert(place)
        calls[ticket] = Call(
            waiter: LineWaiter(ticket: ticket, weight: weight, continuation: entry), place: place, key: key)
        refreshEligible(key, before: before)
        for level in 0..<min(lineOrder.level, arrivalsAbove.count) { arrivalsAbove[level] += 1 }
        if aging.indices.contains(lineOrder.level) {
            aging[lineOrder.level].append((ticket, arrivalsAbove[lineOrder.level]))
        }
        return promoteAged(below: lineOrder.level)
    }

    mutating func startWithoutWaiting(ticket: UInt64, order lineOrder: LineOrder) {
        let key = lineOrder.key
        let before = eligibleHead(of: key)
        let now = virtualTime
        let start = modifyKey(key) { state -> UInt64 in
            let start = max(now, state.lastFinish)
            state.lastFinish = Self.adding(lineOrder.stride, to: start)
            state.running += 1
            return start
        }
        virtualTime = max(virtualTime, start)
        runningKeys[ticket] = key
        refreshEligible(key, before: before)
    }

    mutating func removeHead() -> LineWaiter<Entry> {
        guard let ticket = head?.ticket else { preconditionFailure("removeHead() with no call that may start") }
        return take(ticket, starting: true).waiter
    }

    mutating func remove(ticket: UInt64) -> (waiter: LineWaiter<Entry>, wasHead: Bool)? {
        guard calls[ticket] != nil else { return nil }
        let wasHead = head?.ticket == ticket
        return (take(ticket, starting: false).waiter, wasHead)
    }

    mutating func removeAll() -> [LineWaiter<Entry>] {
        let waiters = order.sorted.compactMap { calls[$0.ticket]?.waiter }
        order.removeAll()
        eligible.removeAll()
        calls = [:]
        resetAging()
        keys = keys.filter { $0.value.running > 0 }.mapValues { state in
            KeyState(running: state.running, lastFinish: state.lastFinish)
        }
        if keys.isEmpty { virtualTime = 0 }
        return waiters
    }

    mutating func released(ticket: UInt64) {
        guard let key = runningKeys.removeValue(forKey: ticket) else { return }
        let before = eligibleHead(of: key)
        modifyKey(key) { $0.running -= 1 }
        refreshEligible(key, before: before)
        freeIfIdle(key)
    }

    func place(of ticket: UInt64) -> Int? {
        calls[ticket].map { order.rank(of: $0.place) }
    }

    func entry(ticket: UInt64) -> Entry? {
        calls[ticket]?.waiter.continuation
    }

    mutating func update(ticket: UInt64, _ change: (inout Entry) -> Void) {
        guard calls[ticket] != nil else { return }
        change(&calls[ticket]!.waiter.continuation)
    }

    func contains(ticket: UInt64) -> Bool {
        calls[ticket] != nil
    }

    func isCapped(_ lineOrder: LineOrder) -> Bool {
        guard let maxRunningPerKey else { return false }
        return (keys[lineOrder.key]?.running ?? 0) >= maxRunningPerKey
    }

    func refusal(of lineOrder: LineOrder) -> KeyRefusal? {
        guard let maxQueuedPerKey else { return nil }
        let state = keys[lineOrder.key]
        let waiting = state?.waitingCount ?? 0
        guard waiting >= maxQueuedPerKey else { return nil }
        let next = state?.waiting.min.map { order.rank(of: $0) }
        return KeyRefusal(waiting: waiting, maxWaiting: maxQueuedPerKey, nextPlace: next)
    }

    func placeIfAdded(_ lineOrder: LineOrder) -> Int {
        let start = max(virtualTime, keys[lineOrder.key]?.lastFinish ?? 0)
        return order.rank(
            of: Place(rank: CallPriority.highest.level - lineOrder.level, tag: start, ticket: .max))
    }

    func inLineOrder(_ tickets: [UInt64]) -> [UInt64] {
        tickets.compactMap { calls[$0]?.place }.sorted().map(\.ticket)
    }

    /// The key's running and waiting counts, for tests and snapshots.
    func counts(of key: FairnessKey?) -> (waiting: Int, running: Int) {
        (keys[key]?.waitingCount ?? 0, keys[key]?.running ?? 0)
    }

    /// Keys with a call waiting or running.
    var keyCount: Int { keys.count }

    /// The entries the line's tables have room for: what an idle line still holds after a burst.
    var retainedCapacity: Int {
        keys.capacity + calls.capacity + runningKeys.capacity + aging.map(\.capacity).reduce(0, +)
    }

    // MARK: Internals

    private mutating func modifyKey<Result>(_ key: FairnessKey?, _ body: (inout KeyState) -> Result) -> Result {
        body(&keys[key, default: KeyState()])
    }

    private mutating func take(_ ticket: UInt64, starting: Bool) -> Call {
        guard let call = calls.removeValue(forKey: ticket) else { preconditionFailure("ticket \(ticket) not in line") }
        order.remove(call.place)
        let before = eligibleHead(of: call.key)
        let tracks = tracksKeyOrder
        modifyKey(call.key) { state in
            if tracks { state.waiting.remove(call.place) }
            state.waitingCount -= 1
            if starting { state.running += 1 }
        }
        refreshEligible(call.key, before: before)
        if starting {
            virtualTime = max(virtualTime, call.place.tag)
            runningKeys[ticket] = call.key
        } else {
            freeIfIdle(call.key)
        }
        if calls.isEmpty {
            resetAging()
            if calls.capacity > 1024 { calls = [:] }
        }
        return call
    }

    /// The key's first waiting call when the key is under its running cap: its entry in ``eligible``.
    private func eligibleHead(of key: FairnessKey?) -> Place? {
        guard let maxRunningPerKey, let state = keys[key], state.running < maxRunningPerKey else { return nil }
        return state.waiting.min
    }

    private mutating func refreshEligible(_ key: FairnessKey?, before: Place?) {
        guard maxRunningPerKey != nil else { return }
        let after = eligibleHead(of: key)
        guard before != after else { return }
        if let before { eligible.remove(before) }
        if let after { eligible.insert(after) }
    }

    private mutating func freeIfIdle(_ key: FairnessKey?) {
        guard let state = keys[key], state.waitingCount == 0, state.running == 0 else { return }
        keys[key] = nil
        if keys.isEmpty {
            virtualTime = 0
            if keys.capacity > 1024 { keys = [:] }
            if runningKeys.capacity > 1024 { runningKeys = [:] }
        }
    }

    private mutating func resetAging() {
        for level in aging.indices {
            arrivalsAbove[level] = 0
            aging[level] = []
            agingHeads[level] = 0
        }
    }

    /// Raises to the top level the calls of levels below `level` that `agingArrivals` calls of a higher level
    /// have joined behind. Returns them.
    private mutating func promoteAged(below level: Int) -> [UInt64] {
        var promoted: [UInt64] = []
        for lower in 0..<min(level, aging.count) {
            while agingHeads[lower] < aging[lower].count,
                aging[lower][agingHeads[lower]].mark + agingArrivals <= arrivalsAbove[lower]
            {
                let ticket = aging[lower][agingHeads[lower]].ticket
                agingHeads[lower] += 1
                if let call = calls[ticket], call.place.rank > 0 {
                    raise(call, ticket: ticket)
                    promoted.append(ticket)
                }
            }
            if agingHeads[lower] > 64 && agingHeads[lower] * 2 > aging[lower].count {
                aging[lower].removeFirst(agingHeads[lower])
                agingHeads[lower] = 0
            }
        }
        return promoted
    }

    /// Moves a waiting call to the top level, keeping its tag.
    private mutating func raise(_ call: Call, ticket: UInt64) {
        var raised = call.place
        raised.rank = 0
        let before = eligibleHead(of: call.key)
        order.remove(call.place)
        order.insert(raised)
        let tracks = tracksKeyOrder
        modifyKey(call.key) { state in
            guard tracks else { return }
            state.waiting.remove(call.place)
            state.waiting.insert(raised)
        }
        calls[ticket]?.place = raised
        refreshEligible(call.key, before: before)
    }

    private static func adding(_ stride: UInt64, to tag: UInt64) -> UInt64 {
        let (sum, overflow) = tag.addingReportingOverflow(stride)
        return overflow ? .max : sum
    }
}

/// Why a call's key may not queue one more: its waiting count, its cap, and the place of its next call.
struct KeyRefusal: Sendable, Equatable {
    var waiting: Int
    var maxWaiting: Int
    /// The place of the key's first waiting call; `nil` when it has none (a cap of 0).
    var nextPlace: Int?
}

/// How a call stands in a line that orders by key: its key, the virtual time one of its calls takes (from the
/// key's weight), and its priority level. An arrival-order line ignores it.
struct LineOrder: Sendable, Hashable {
    var key: FairnessKey?
    var stride: UInt64
    var level: Int

    static let arrival = LineOrder(key: nil, stride: 1, level: CallPriority.normal.level)
}
