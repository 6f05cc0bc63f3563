/// How urgent a call is, among the calls of a group with fair share: a level from ``lowest`` to ``highest``.
///
/// Levels are strict: a waiting call of a higher level starts before every waiting call of a lower level,
/// and within a level keys share the slots by weight. So that no level starves, a waiting call rises to
/// ``highest`` once ``FairShare/agingArrivals`` calls of a higher level have joined the group's line after it:
/// a call is passed by at most that many later calls. A group in arrival order (``QueueDiscipline/fifo``)
/// ignores priorities.
public struct CallPriority: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    /// The level, `0` (lowest) to ``CallPriority/highest``'s.
    public var level: Int

    /// A priority of `level`; checked when a call carrying it is admitted: a level outside
    /// `lowest.level...highest.level` is refused with ``CallQueueError/Code/invalidArgument``.
    public init(level: Int) {
        self.level = level
    }

    public static let lowest = CallPriority(level: 0)
    public static let low = CallPriority(level: 1)
    /// The priority of a call that names none.
    public static let normal = CallPriority(level: 2)
    public static let high = CallPriority(level: 3)
    public static let highest = CallPriority(level: 4)

    public static func < (lhs: CallPriority, rhs: CallPriority) -> Bool { lhs.level < rhs.level }

    public init(from decoder: any Decoder) throws {
        level = try decoder.singleValueContainer().decode(Int.self)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(level)
    }

    public var description: String { "\(level)" }

    func validate() throws {
        guard (Self.lowest.level...Self.highest.level).contains(level) else {
            throw CallQueueError(
                .invalidArgument,
                "priority level \(level) is outside \(Self.lowest.level)...\(Self.highest.level); use "
                    + "CallPriority.lowest ... .highest")
        }
    }
}
