/// How many calls of a concurrency group may run at once: Gradio's `concurrency_limit`.
///
/// A number in `1...CallQueue.Configuration.maximumCount` or ``unlimited``. Anything else is rejected when
/// the queue is built (``CallQueueError/Code/invalidArgument``), never silently turned into something else.
public enum ConcurrencyLimit: Sendable, Hashable, CustomStringConvertible, ExpressibleByIntegerLiteral {
    /// At most this many calls at once.
    case limited(Int)
    /// No limit: every call starts at once (each still gets a distinct slot number).
    case unlimited

    /// The default for groups nobody declared: one call at a time.
    public static let one = ConcurrencyLimit.limited(1)

    public init(integerLiteral value: Int) {
        self = .limited(value)
    }

    /// The number of calls this limit admits at once, or `nil` for unlimited.
    public var count: Int? {
        switch self {
        case .limited(let count): return count
        case .unlimited: return nil
        }
    }

    public var description: String {
        switch self {
        case .limited(let count): return "\(count)"
        case .unlimited: return "unlimited"
        }
    }
}
