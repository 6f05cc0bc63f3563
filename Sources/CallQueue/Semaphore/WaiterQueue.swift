/// The queue of a ``FIFOSemaphore``: waiters in arrival order, each with a ticket, a weight and whatever
/// the owner needs to resume it.
///
/// - Append, remove the first, and remove by ticket (cancellation) are O(1) amortized.
/// - A waiter removed from the middle leaves a tombstone in the ring; tombstones at the head are skipped
///   at once (so ``first`` is always live), and the ring is compacted when tombstones outnumber live waiters.
/// - ``position(of:)`` is O(log n): a Fenwick tree counts the live waiters per ring slot.
///
/// A value type with no locking of its own: the semaphore's state machine owns it.
struct WaiterQueue<Continuation> {
    struct Waiter {
        var ticket: UInt64
        var weight: Int
        var continuation: Continuation
    }

    private static var initialCapacity: Int { 16 }
    /// Above this capacity an emptied queue gives its memory back.
    private static var retainedCapacity: Int { 1024 }

    /// The ring. A slot is `nil` when empty or when its waiter left early (a tombstone).
    private var slots: ContiguousArray<Waiter?>
    /// Logical index of the first used slot; slot `i` lives at `slots[i & mask]`.
    private var headIndex = 0
    /// Slots in use from `headIndex` on: live waiters plus tombstones.
    private var usedCount = 0
    /// Live waiters.
    private(set) var count = 0
    /// Ticket to logical index, for removal by ticket and position queries.
    private var indexByTicket: [UInt64: Int] = [:]
    /// 1 in each physical slot that holds a live waiter.
    private var liveSlots: FenwickTree

    init() {
        slots = ContiguousArray(repeating: nil, count: Self.initialCapacity)
        liveSlots = FenwickTree(count: Self.initialCapacity)
    }

    private var mask: Int { slots.count - 1 }

    var isEmpty: Bool { count == 0 }

    /// The longest-waiting live waiter.
    var first: Waiter? {
        count == 0 ? nil : slots[headIndex & mask]
    }

    /// Adds a waiter at the back. The ticket must not already be queued.
    mutating func append(ticket: UInt64, weight: Int, continuation: Continuation) {
        if usedCount == slots.count {
            rebuild(capacity: count * 2 >= slots.count ? slots.count * 2 : slots.count)
        }
        let index = headIndex + usedCount
        let previous = indexByTicket.updateValue(index, forKey: ticket)
        precondition(previous == nil, "ticket \(ticket) is already queued")
        slots[index & mask] = Waiter(ticket: ticket, weight: weight, continuation: continuation)
        liveSlots.add(1, at: index & mask)
        usedCount += 1
        count += 1
    }

    /// Removes and returns the first waiter. The queue must not be empty.
    mutating func removeFirst() -> Waiter {
        let slot = headIndex & mask
        guard let waiter = slots[slot] else { preconditionFailure("removeFirst() on an empty WaiterQueue") }
        slots[slot] = nil
        indexByTicket[waiter.ticket] = nil
        liveSlots.add(-1, at: slot)
        headIndex += 1
        usedCount -= 1
        count -= 1
        dropLeadingTombstones()
        return waiter
    }

    /// Removes the waiter with this ticket, wherever it stands; `nil` when it is not queued.
    /// `wasFirst` says whether it stood at the head, in which case the new head may now be served.
    mutating func remove(ticket: UInt64) -> (waiter: Waiter, wasFirst: Bool)? {
        guard let index = indexByTicket.removeValue(forKey: ticket) else { return nil }
        let slot = index & mask
        guard let waiter = slots[slot] else { preconditionFailure("ticket \(ticket) indexed at an empty slot") }
        slots[slot] = nil
        liveSlots.add(-1, at: slot)
        count -= 1
        let wasFirst = index == headIndex
        if wasFirst {
            dropLeadingTombstones()
        } else {
            let tombstones = usedCount - count
            if tombstones > 32 && tombstones > count {
                rebuild(capacity: slots.count)
            }
        }
        return (waiter, wasFirst)
    }

    /// Removes every waiter and returns them in queue order.
    mutating func removeAll() -> [Waiter] {
        var waiters: [Waiter] = []
        waiters.reserveCapacity(count)
        for offset in 0..<usedCount {
            if let waiter = slots[(headIndex + offset) & mask] {
                waiters.append(waiter)
            }
        }
        self = WaiterQueue()
        return waiters
    }

    /// The number of live waiters ahead of the one with this ticket (0 for the head); `nil` when not queued.
    func position(of ticket: UInt64) -> Int? {
        guard let index = indexByTicket[ticket] else { return nil }
        let start = headIndex & mask
        let end = index & mask
        if end >= start {
            return liveSlots.prefixSum(upTo: end) - liveSlots.prefixSum(upTo: start)
        }
        return count - liveSlots.prefixSum(upTo: start) + liveSlots.prefixSum(upTo: end)
    }

    /// The payload of the waiter with this ticket, if it is queued.
    func entry(ticket: UInt64) -> Continuation? {
        guard let index = indexByTicket[ticket] else { return nil }
        return slots[index & mask]?.continuation
    }

    /// Changes the payload of the waiter with this ticket, if it is queued.
    mutating func update(ticket: UInt64, _ change: (inout Continuation) -> Void) {
        guard let index = indexByTicket[ticket], slots[index & mask] != nil else { return }
        change(&slots[index & mask]!.continuation)
    }

    /// Whether the waiter with this ticket is queued.
    func contains(ticket: UInt64) -> Bool {
        indexByTicket[ticket] != nil
    }

    private mutating func dropLeadingTombstones() {
        while usedCount > 0 && slots[headIndex & mask] == nil {
            headIndex += 1
            usedCount -= 1
        }
        if usedCount == 0 {
            if slots.count > Self.retainedCapacity {
                self = WaiterQueue()
            } else {
                headIndex = 0
            }
        }
    }

    /// Moves the live waiters, in order, to the front of a ring of `capacity` slots, dropping tombstones.
    private mutating func rebuild(capacity: Int) {
        var newSlots = ContiguousArray<Waiter?>(repeating: nil, count: capacity)
        var newIndex = 0
        for offset in 0..<usedCount {
            if let waiter = slots[(headIndex + offset) & mask] {
                newSlots[newIndex] = waiter
                indexByTicket[waiter.ticket] = newIndex
                newIndex += 1
            }
        }
        slots = newSlots
        headIndex = 0
        usedCount = count
        liveSlots = FenwickTree(count: capacity, onesPrefix: count)
    }
}

extension WaiterQueue: Sendable where Continuation: Sendable {}
extension WaiterQueue.Waiter: Sendable where Continuation: Sendable {}
