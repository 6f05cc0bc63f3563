/// The last `capacity` values recorded by task id, oldest forgotten first.
///
/// Recording an id again replaces its value and makes it the newest, so a reused id never loses its newest
/// entry to the eviction of its older one. Recording and evicting are O(1) amortized: the order is a ring
/// of (id, sequence) pairs, and a pair whose sequence no longer matches its id's entry is skipped.
struct TaskHistory<Value> {
    struct Entry {
        var value: Value
        var sequence: UInt64
    }

    let capacity: Int
    private var entries: [TaskID: Entry] = [:]
    private var order: [(id: TaskID, sequence: UInt64)] = []
    private var orderStart = 0
    private var nextSequence: UInt64 = 0

    init(capacity: Int) {
        self.capacity = max(0, capacity)
    }

    var count: Int { entries.count }

    subscript(id: TaskID) -> Value? {
        entries[id]?.value
    }

    mutating func record(_ value: Value, for id: TaskID) {
        guard capacity > 0 else { return }
        nextSequence += 1
        entries[id] = Entry(value: value, sequence: nextSequence)
        order.append((id, nextSequence))
        while entries.count > capacity, orderStart < order.count {
            let oldest = order[orderStart]
            orderStart += 1
            if entries[oldest.id]?.sequence == oldest.sequence {
                entries[oldest.id] = nil
            }
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
}

extension TaskHistory: Sendable where Value: Sendable {}
extension TaskHistory.Entry: Sendable where Value: Sendable {}
