/// A group's line: the order in which its waiting calls start, as a value with no locking of its own.
///
/// The scheduler asks a discipline for its ``head`` (the next call that may start), takes calls out by ticket
/// (cancel, deadline, a grant from a cluster), and asks for the ``place(of:)`` of a ticket: the number of
/// waiting calls that start before it if nobody arrives or leaves. Every operation is tested alone, against a
/// plain model, without concurrency. ``FIFOLine`` is arrival order; ``FairShareLine`` is fair share between
/// keys. A line also counts the calls it started, per key, for its running caps: ``removeHead()`` and
/// ``startWithoutWaiting(ticket:order:)`` count one, ``released(ticket:)`` gives it back.
protocol LineDiscipline {
    /// What the scheduler keeps with each waiting call.
    associatedtype Entry

    /// Waiting calls.
    var count: Int { get }
    var isEmpty: Bool { get }
    /// The next call that may start, if any waits.
    var head: LineWaiter<Entry>? { get }

    /// Adds a call. Its ticket must not be in the line. Returns the tickets of waiting calls whose place
    /// dropped by more than one (raised by aging), whose readers should hear of it.
    @discardableResult
    mutating func enqueue(ticket: UInt64, weight: Int, order: LineOrder, entry: Entry) -> [UInt64]
    /// A call that starts without waiting (nothing that may start waits, and it fits): counted as started.
    mutating func startWithoutWaiting(ticket: UInt64, order: LineOrder)
    /// Takes out the head, counted as started. There must be a head.
    mutating func removeHead() -> LineWaiter<Entry>
    /// A call started from this line, or without waiting, gave its slot back.
    mutating func released(ticket: UInt64)
    /// Whether a call with `order` could not start now for its key's running cap.
    func isCapped(_ order: LineOrder) -> Bool
    /// Why a call with `order` may not wait, for its key's queued cap; `nil`: it may.
    func refusal(of order: LineOrder) -> KeyRefusal?
    /// The tickets among `tickets` that are in the line, in the line's order.
    func inLineOrder(_ tickets: [UInt64]) -> [UInt64]
    /// The place a call with `order` would take if it joined now: what its estimated wait is judged by.
    func placeIfAdded(_ order: LineOrder) -> Int
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

    @discardableResult
    mutating func enqueue(ticket: UInt64, weight: Int, order: LineOrder, entry: Entry) -> [UInt64] {
        queue.append(ticket: ticket, weight: weight, continuation: entry)
        return []
    }

    mutating func startWithoutWaiting(ticket: UInt64, order: LineOrder) {}

    mutating func released(ticket: UInt64) {}

    func isCapped(_ order: LineOrder) -> Bool { false }

    func refusal(of order: LineOrder) -> KeyRefusal? { nil }

    func inLineOrder(_ tickets: [UInt64]) -> [UInt64] {
        tickets.filter { queue.contains(ticket: $0) }
    }

    func placeIfAdded(_ order: LineOrder) -> Int { queue.count }

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

/// A group's line: arrival order, or fair share when the group's configuration says so. Each operation goes
/// to the one discipline the group has.
struct GroupLine<Entry>: LineDiscipline {
    private var fifo = FIFOLine<Entry>()
    private(set) var fair: FairShareLine<Entry>?

    init(_ discipline: QueueDiscipline) {
        fair = discipline.fairShare.map { FairShareLine($0) }
    }

    var count: Int { fair?.count ?? fifo.count }
    var isEmpty: Bool { fair?.isEmpty ?? fifo.isEmpty }
    var head: LineWaiter<Entry>? { fair != nil ? fair!.head : fifo.head }

    @discardableResult
    mutating func enqueue(ticket: UInt64, weight: Int, order: LineOrder, entry: Entry) -> [UInt64] {
        if fair != nil { return fair!.enqueue(ticket: ticket, weight: weight, order: order, entry: entry) }
        return fifo.enqueue(ticket: ticket, weight: weight, order: order, entry: entry)
    }

    mutating func startWithoutWaiting(ticket: UInt64, order: LineOrder) {
        if fair != nil { fair!.startWithoutWaiting(ticket: ticket, order: order) }
    }

    mutating func removeHead() -> LineWaiter<Entry> {
        if fair != nil { return fair!.removeHead() }
        return fifo.removeHead()
    }

    mutating func released(ticket: UInt64) {
        if fair != nil { fair!.released(ticket: ticket) }
    }

    mutating func remove(ticket: UInt64) -> (waiter: LineWaiter<Entry>, wasHead: Bool)? {
        if fair != nil { return fair!.remove(ticket: ticket) }
        return fifo.remove(ticket: ticket)
    }

    mutating func removeAll() -> [LineWaiter<Entry>] {
        if fair != nil { return fair!.removeAll() }
        return fifo.removeAll()
    }

    func isCapped(_ order: LineOrder) -> Bool { fair?.isCapped(order) ?? false }
    func refusal(of order: LineOrder) -> KeyRefusal? { fair?.refusal(of: order) }
    func inLineOrder(_ tickets: [UInt64]) -> [UInt64] { fair?.inLineOrder(tickets) ?? fifo.inLineOrder(tickets) }
    func placeIfAdded(_ order: LineOrder) -> Int { fair?.placeIfAdded(order) ?? fifo.placeIfAdded(order) }
    func place(of ticket: UInt64) -> Int? { fair != nil ? fair!.place(of: ticket) : fifo.place(of: ticket) }
    func entry(ticket: UInt64) -> Entry? { fair != nil ? fair!.entry(ticket: ticket) : fifo.entry(ticket: ticket) }

    mutating func update(ticket: UInt64, _ change: (inout Entry) -> Void) {
        if fair != nil { return fair!.update(ticket: ticket, change) }
        fifo.update(ticket: ticket, change)
    }

    func contains(ticket: UInt64) -> Bool {
        fair != nil ? fair!.contains(ticket: ticket) : fifo.contains(ticket: ticket)
    }
}
