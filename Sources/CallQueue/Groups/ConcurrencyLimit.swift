/// How many calls of a concurrency group may run at once: Gradio's `concurrency_limit`.
///
/// A positive number or ``unlimited``. Zero and negative numbers are rejected when a group is declared
/// (``CallQueueError/Code/invalidArgument``), never silently turned into something else.
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

    func validated(for group: ConcurrencyGroupID) throws -> ConcurrencyLimit {
        if case .limited(let count) = self, count < 1 {
            throw CallQueueError(
                .invalidArgument,
                "concurrency limit \(count) for group '\(group)': a limit is a positive number or .unlimited"
            )
        }
        return self
    }
}
