/// A group's parked readers ordered by when each is next due: the value of the group's `moved` counter
/// (departures from its line) at which its position may have changed enough to report.
///
/// A min-heap with lazy removal: a reader that leaves the parked set some other way (its own task changed,
/// it unsubscribed, it parked again with a new due count) leaves a stale entry behind, which the owner skips
/// when it comes out. ``compact(keeping:)`` bounds how many stale entries pile up.
struct ReaderWakeups {
    private var heap: [(due: UInt64, subscription: UpdateSubscription)] = []

    var count: Int { heap.count }

    /// The smallest due count, stale entries included: a flush before it wakes nobody.
    var earliestDue: UInt64? { heap.first?.due }

    mutating func add(_ subscription: UpdateSubscription, due: UInt64) {
        heap.append((due, subscription))
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard heap[child].due < heap[parent].due else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    /// Takes out the entry with the smallest due count when it is at most `moved`.
    mutating func popDue(atOrBefore moved: UInt64) -> (due: UInt64, subscription: UpdateSubscription)? {
        guard let first = heap.first, first.due <= moved else { return nil }
        let last = heap.removeLast()
        guard !heap.isEmpty else { return first }
        heap[0] = last
        var parent = 0
        while true {
            let left = 2 * parent + 1
            guard left < heap.count else { break }
            let right = left + 1
            let smaller = right < heap.count && heap[right].due < heap[left].due ? right : left
            guard heap[smaller].due < heap[parent].due else { break }
            heap.swapAt(parent, smaller)
            parent = smaller
        }
        return first
    }

    /// Rebuilds the heap from the readers still parked, dropping stale entries.
    mutating func compact(keeping parked: some Sequence<UpdateSubscription>) {
        let live = parked.map { ($0.wakeAt, $0) }
        heap = []
        heap.reserveCapacity(live.count)
        for (due, subscription) in live { add(subscription, due: due) }
    }

    mutating func removeAll() {
        heap.removeAll()
    }
}
