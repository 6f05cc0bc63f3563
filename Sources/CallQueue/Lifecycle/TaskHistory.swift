/// The values recorded by task id, oldest forgotten first: at most `capacity` of them, none older than
/// `maxAge`, and at most `maxBytes` of them by the byte counts recorded with them.
///
/// Recording an id again replaces its value and makes it the newest, so a reused id never loses its newest
/// entry to the eviction of its older one. Recording and evicting are O(1) amortized: the order is a ring
/// of (id, sequence) pairs, and a pair whose sequence no longer matches its id's entry is skipped. An entry
/// past its age reads as absent at once, and is evicted at the next record.
struct TaskHistory<Value> {
    struct Entry {
        var value: Value
        var sequence: UInt64
        var recordedAt: ContinuousClock.Instant
        var bytes: Int
    }

    let capacity: Int
    let maxAge: Duration?
    let maxBytes: Int?
    private var entries: [TaskID: Entry] = [:]
    private var order: [(id: TaskID, sequence: UInt64)] = []
    private var orderStart = 0
    private var nextSequence: UInt64 = 0
    private(set) var totalBytes = 0

    init(capacity: Int, maxAge: Duration? = nil, maxBytes: Int? = nil) {
        self.capacity = max(0, capacity)
        self.maxAge = maxAge
        self.maxBytes = maxBytes
    }

    var count: Int { entries.count }

    /// The value recorded for `id`, unless it is older than `maxAge` at `now`.
    subscript(id: TaskID, now: ContinuousClock.Instant) -> Value? {
        guard let entry = entries[id], !isExpired(entry, at: now) else { return nil }
        return entry.value
    }

    private func isExpired(_ entry: Entry, at now: ContinuousClock.Instant) -> Bool {
        guard let maxAge else { return false }
        return now - entry.recordedAt > maxAge
    }

    mutating func record(_ value: Value, for id: TaskID, at now: ContinuousClock.Instant, bytes: Int = 0) {
        guard capacity > 0 else { return }
        if let old = entries[id] { totalBytes -= old.bytes }
        if let maxBytes, bytes > maxBytes {
            // Larger than the whole budget: not kept, and it pushes nothing else out. An older value of the id
            // goes, so a read never finds a value older than the newest recorded.
            entries[id] = nil
            return
        }
        nextSequence += 1
        entries[id] = Entry(value: value, sequence: nextSequence, recordedAt: now, bytes: bytes)
        totalBytes += bytes
        order.append((id, nextSequence))
        while let oldest = oldestEntry(),
            entries.count > capacity || isExpired(oldest.entry, at: now)
                || (maxBytes.map { totalBytes > $0 } ?? false)
        {
            entries[oldest.id] = nil
            totalBytes -= oldest.entry.bytes
            orderStart += 1
        }
        // Give the skipped prefix back once it is half the ring, so the ring stays O(capacity).
        if orderStart > 32 && orderStart * 2 > order.count {
            order.removeFirst(orderStart)
            orderStart = 0
        }
        // An id recorded again and again leaves stale pairs behind; at most half the ring may be stale.
        // Saturating: a capacity of `Int.max` (keep everything) must not overflow.
        let (doubled, overflow) = capacity.multipliedReportingOverflow(by: 2)
        let staleBound = overflow || doubled > Int.max - 32 ? Int.max : doubled + 32
        if order.count - orderStart > staleBound {
            order = order[orderStart...].filter { entries[$0.id]?.sequence == $0.sequence }
            orderStart = 0
        }
    }

    /// The oldest live entry, with stale pairs before it skipped for good.
    private mutating func oldestEntry() -> (id: TaskID, entry: Entry)? {
        while orderStart < order.count {
            let pair = order[orderStart]
            if let entry = entries[pair.id], entry.sequence == pair.sequence { return (pair.id, entry) }
            orderStart += 1
        }
        return nil
    }
}

extension TaskHistory: Sendable where Value: Sendable {}
extension TaskHistory.Entry: Sendable where Value: Sendable {}
