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

    public init(limit: ConcurrencyLimit = .one, maxQueueSize: Int? = nil, budget: Int? = nil) {
        self.limit = limit
        self.maxQueueSize = maxQueueSize
        self.budget = budget
    }
}
