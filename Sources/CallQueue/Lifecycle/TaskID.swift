import Synchronization

/// A task's identity: given by the caller (AUTOMATIC1111's `task(...)` strings included) or generated.
public struct TaskID: Sendable, Hashable, Codable, CustomStringConvertible, ExpressibleByStringLiteral {
    /// The id as the client sees it.
    public var rawValue: String

    public init(_ rawValue: String) {
        self.rawValue = rawValue
    }

    public init(stringLiteral rawValue: String) {
        self.rawValue = rawValue
    }

    public var description: String { rawValue }

    /// A new id in AUTOMATIC1111's UI format: `task(` + 15 base-36 characters + `)`.
    ///
    /// The first 12 characters carry 62 random bits from the system's generator (one draw, which on Linux is
    /// a system call): ids cannot be guessed, so a client cannot cancel another's task by trying ids. The
    /// last 3 count, so ids made in a row differ even in the unlikely case of equal draws.
    public static func generate() -> TaskID {
        var generator = SystemRandomNumberGenerator()
        var random = generator.next() % 4_738_381_338_321_616_896  // 36^12
        var count = UInt64(idCounter.wrappingAdd(1, ordering: .relaxed).oldValue % 46_656)  // 36^3
        var digits = [UInt8](repeating: 0, count: 15)
        for index in stride(from: 11, through: 0, by: -1) {
            digits[index] = base36[Int(random % 36)]
            random /= 36
        }
        for index in stride(from: 14, through: 12, by: -1) {
            digits[index] = base36[Int(count % 36)]
            count /= 36
        }
        return TaskID("task(" + String(decoding: digits, as: UTF8.self) + ")")
    }

    private static let base36 = Array("0123456789abcdefghijklmnopqrstuvwxyz".utf8)
    private static let idCounter = Atomic<Int>(0)

    /// AUTOMATIC1111's rule for a call's first argument: a `String` (exactly; a `Substring` does not count)
    /// that starts with `task(` and ends with `)` is the task's id.
    public static func fromFirstArgument(_ argument: Any) -> TaskID? {
        guard let text = argument as? String, text.hasPrefix("task("), text.hasSuffix(")"), text.count >= 6 else {
            return nil
        }
        return TaskID(text)
    }

    public init(from decoder: any Decoder) throws {
        rawValue = try decoder.singleValueContainer().decode(String.self)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}
