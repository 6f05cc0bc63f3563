/// Who a call is for, as a group with fair share sees it: a user, a session or a tenant.
///
/// A group whose discipline is ``QueueDiscipline/fairShare(_:)`` serves keys in turn, in proportion to their
/// weights, and counts its per-key caps by key; calls without a key share one. A key is an opaque string to
/// the queue, compared byte for byte; it is checked when a call is admitted: an empty key, or one longer than
/// ``maxUTF8Length`` bytes, is refused with ``CallQueueError/Code/invalidArgument``.
///
/// Keys can be personal data: they appear in a ``CallQueueError`` only for the caller's own key, and in
/// statuses and observers only where ``FairShare/reportsKeys`` says so.
public struct FairnessKey: Sendable, Hashable, Codable, ExpressibleByStringLiteral, CustomStringConvertible {
    /// The longest key, in UTF-8 bytes.
    public static let maxUTF8Length = 256

    /// The key's text.
    public let value: String

    /// A key from its text; it is checked when a call carrying it is admitted.
    public init(_ value: String) {
        self.value = value
    }

    public init(stringLiteral value: String) {
        self.value = value
    }

    /// A key from bytes a client sent (a header, a cookie), which must be UTF-8.
    ///
    /// - Throws: ``CallQueueError/Code/invalidArgument`` when the bytes are not UTF-8, or when the key is empty
    ///   or longer than ``maxUTF8Length`` bytes.
    public init(utf8 bytes: some Collection<UInt8>) throws {
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw CallQueueError(.invalidArgument, "a fairness key must be UTF-8; these \(bytes.count) bytes are not")
        }
        self.value = text
        try validate()
    }

    public init(from decoder: any Decoder) throws {
        value = try decoder.singleValueContainer().decode(String.self)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(value)
    }

    public var description: String { value }

    /// Throws unless the key is between 1 and ``maxUTF8Length`` UTF-8 bytes long.
    func validate() throws {
        let length = value.utf8.count
        guard length > 0 else {
            throw CallQueueError(.invalidArgument, "a fairness key must not be empty; pass nil for calls without one")
        }
        guard length <= Self.maxUTF8Length else {
            throw CallQueueError(
                .invalidArgument,
                "a fairness key is at most \(Self.maxUTF8Length) UTF-8 bytes long; this one has \(length) "
                    + "(hash a longer identifier)")
        }
    }
}
