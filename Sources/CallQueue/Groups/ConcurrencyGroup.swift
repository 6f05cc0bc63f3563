/// One concurrency group at run time: its limit as a FIFO semaphore, its weight budget, and the numbering
/// of its slots.
final class ConcurrencyGroup: Sendable {
    let id: ConcurrencyGroupID
    let configuration: ConcurrencyGroupConfiguration
    /// One permit per slot; `nil` when the group is unlimited.
    let slots: FIFOSemaphore?
    /// The weight budget; `nil` when the group has none.
    let budget: FIFOSemaphore?
    private let slotNumbers = LockedState(SlotNumbers())

    init(id: ConcurrencyGroupID, configuration: ConcurrencyGroupConfiguration) {
        self.id = id
        self.configuration = configuration
        slots = configuration.limit.count.map { FIFOSemaphore(permits: $0) }
        budget = configuration.budget.map { FIFOSemaphore(permits: $0) }
    }

    /// The lowest free slot number. The caller holds a permit of `slots`, so one is free.
    func takeSlot() -> Int {
        slotNumbers.withLock { $0.take() }
    }

    func returnSlot(_ slot: Int) {
        slotNumbers.withLock { $0.give(slot) }
    }

    /// Free slot numbers, lowest first, reusing returned ones before making new ones.
    private struct SlotNumbers {
        /// Returned numbers, highest first, so the lowest is at the end.
        var returned: [Int] = []
        var nextFresh = 0

        mutating func take() -> Int {
            if let slot = returned.popLast() { return slot }
            defer { nextFresh += 1 }
            return nextFresh
        }

        mutating func give(_ slot: Int) {
            let index = returned.firstIndex { $0 < slot } ?? returned.endIndex
            returned.insert(slot, at: index)
        }
    }
}
