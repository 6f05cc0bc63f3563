/// The name of a concurrency group: Gradio's `concurrency_id`.
///
/// Call sites that name the same group share one queue and one limit, so "three models on two GPUs" is one
/// group with a limit of 2 that all three call sites name.
public struct ConcurrencyGroupID: Sendable, Hashable, Codable, CustomStringConvertible, ExpressibleByStringLiteral {
    /// The group's name.
    public var name: String

    public init(_ name: String) {
        self.name = name
    }

    public init(stringLiteral name: String) {
        self.name = name
    }

    /// The group calls join when they name none.
    public static let `default` = ConcurrencyGroupID("default")

    public var description: String { name }

    public init(from decoder: any Decoder) throws {
        name = try decoder.singleValueContainer().decode(String.self)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(name)
    }
}
