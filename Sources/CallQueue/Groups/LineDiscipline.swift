/// A group's line: the order in which its waiting calls start, as a value with no locking of its own.
///
/// The scheduler asks a discipline for its ``head`` (the next call that may start), takes calls out by ticket
/// (cancel, deadline, a grant from a cluster), and asks for the ``place(of:)`` of a ticket: the number of
/// waiting calls that start before it if nobody arrives or leaves. Every operation is tested alone, against a
/// plain model, without concurrency. ``FIFOLine`` is arrival order.
protocol LineDiscipline {
    /// What the scheduler keeps with each waiting call.
    associatedtype Entry

    /// Waiting calls.
    var count: Int { get }
    var isEmpty: Bool { get }
    /// The next call that may start, if any waits.
    var head: LineWaiter<Entry>? { get }

    /// Adds a call. Its ticket must not be in the line.
    mutating func enqueue(ticket: UInt64, weight: Int, entry: Entry)
    /// Takes out the head. The line must not be empty.
    mutating func removeHead() -> LineWaiter<Entry>
    /// Takes out the call with `ticket`, and says whether it was the head; `nil` when it is not in the line.
    mutating func remove(ticket: UInt64) -> (waiter: LineWaiter<Entry>, wasHead: Bool)?
    /// Takes out every call, in the line's order.
    mutating func removeAll() -> [LineWaiter<Entry>]
    /// How many waiting calls start before `ticket`; `nil` when it is not in the line.
    func place(of ticket: UInt64) -> Int?
    func entry(ticket: UInt64) -> Entry?
    mutating func update(ticket: UInt64, _ change: (inout Entry) -> Void)
    func contains(ticket: UInt64) -> Bool
}

/// One waiting call in a line: its ticket (arrival order), its weight of the group's budget, and its entry.
typealias LineWaiter<Entry> = WaiterQueue<Entry>.Waiter

/// Arrival order: the ring of ``WaiterQueue`` (O(1) enqueue, head and removal by ticket; places in O(log n)
/// from a Fenwick tree), the same waiting structure ``FIFOSemaphore`` uses.
struct FIFOLine<Entry>: LineDiscipline {
    private var queue = WaiterQueue<Entry>()

    var count: Int { queue.count }
    var isEmpty: Bool { queue.isEmpty }
    var head: LineWaiter<Entry>? { queue.first }

    mutating func enqueue(ticket: UInt64, weight: Int, entry: Entry) {
        queue.append(ticket: ticket, weight: weight, continuation: entry)
    }

    mutating func removeHead() -> LineWaiter<Entry> {
        queue.removeFirst()
    }

    mutating func remove(ticket: UInt64) -> (waiter: LineWaiter<Entry>, wasHead: Bool)? {
        guard let (waiter, wasFirst) = queue.remove(ticket: ticket) else { return nil }
        return (waiter, wasFirst)
    }

    mutating func removeAll() -> [LineWaiter<Entry>] {
        queue.removeAll()
    }

    func place(of ticket: UInt64) -> Int? {
        queue.position(of: ticket)
    }

    func entry(ticket: UInt64) -> Entry? {
        queue.entry(ticket: ticket)
    }

    mutating func update(ticket: UInt64, _ change: (inout Entry) -> Void) {
        queue.update(ticket: ticket, change)
    }

    func contains(ticket: UInt64) -> Bool {
        queue.contains(ticket: ticket)
    }
}
