/// How one concurrency group behaves: declared once, on the group, never by whichever call site runs first.
public struct ConcurrencyGroupConfiguration: Sendable, Hashable {
    /// How many calls may run at once; each running call holds one slot numbered `0..<limit`.
    public var limit: ConcurrencyLimit
    /// The most calls that may wait in this group's queue; a call beyond it is rejected at once with
    /// ``CallQueueError/Code/queueFull``. `nil`: no bound of its own.
    public var maxQueueSize: Int?
    /// A budget the calls' weights count against (say, MiB of VRAM); `nil`: weights are not used.
    /// A call that declares a weight waits, in order, until its weight fits the budget left.
    public var budget: Int?
    /// Which device each slot runs on, as indices into ``CallQueue/Configuration/deviceSamplers``: slot `k`
    /// uses `devices[k % devices.count]`, so `[0, 0, 1, 1]` puts two calls on each of two GPUs. `nil`: slot
    /// `k` uses device `k % deviceSamplers.count` (slot k on GPU k where there are that many).
    public var devices: [Int]?
    /// The order in which waiting calls start: arrival order (``QueueDiscipline/fifo``, the default), or fair
    /// share between the calls' keys (``QueueDiscipline/fairShare(_:)``). A cluster-wide group is in arrival
    /// order only.
    public var discipline: QueueDiscipline

    /// A group's configuration; every parameter has the default described on its property.
    public init(
        limit: ConcurrencyLimit = .one, maxQueueSize: Int? = nil, budget: Int? = nil, devices: [Int]? = nil,
        discipline: QueueDiscipline = .fifo
    ) {
        self.limit = limit
        self.maxQueueSize = maxQueueSize
        self.budget = budget
        self.devices = devices
        self.discipline = discipline
    }

    /// The device slot `slot` runs on, given `deviceCount` devices; `nil` when there are none.
    func device(ofSlot slot: Int, deviceCount: Int) -> Int? {
        guard deviceCount > 0, slot >= 0 else { return nil }
        guard let devices, !devices.isEmpty else { return slot % deviceCount }
        return devices[slot % devices.count]
    }
}
