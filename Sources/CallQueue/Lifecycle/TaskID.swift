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

    /// A new id in AUTOMATIC1111's UI format: `task(` + 15 random base-36 characters + `)`.
    public static func generate() -> TaskID {
        let alphabet = Array("0123456789abcdefghijklmnopqrstuvwxyz")
        var generator = SystemRandomNumberGenerator()
        let body = String((0..<15).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &generator)] })
        return TaskID("task(\(body))")
    }

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
