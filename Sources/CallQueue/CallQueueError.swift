/// An error thrown by the call queue, identified by a ``Code`` and carrying a human-readable message.
///
/// Codes are open-ended (a struct, not an enum), so new ones can be added without breaking a `switch`
/// in client code: compare with `==` or `~=` against the static members.
///
/// ```swift
/// do {
///     try await semaphore.acquire(deadline: .now + .seconds(5))
/// } catch let error as CallQueueError where error.code == .timedOut {
///     // answer 503 / retry later
/// }
/// ```
///
/// Cancellation is never reported with this type: it is `CancellationError`, as everywhere in Swift.
public struct CallQueueError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of failure this is.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Value: String, Sendable, Hashable {
            case timedOut
            case closed
            case invalidArgument
            case queueFull
            case waitTooLong
            case duplicateTask
            case unknownTask
            case unknownGroup
            case invalidBatchOutput
            case leaseLost
            case unavailable
            case incompatibleSchema
            case tooManyQueued
        }

        private let value: Value

        private init(_ value: Value) {
            self.value = value
        }

        /// The code named by its ``description`` (`"queueFull"`), or `nil` for a name this version does not
        /// know.
        public init?(name: String) {
            guard let value = Value(rawValue: name) else { return nil }
            self.value = value
        }

        /// The deadline passed before the call could start.
        public static let timedOut = Code(.timedOut)
        /// The queue or semaphore was closed (the server is shutting down).
        public static let closed = Code(.closed)
        /// An argument was outside the range the operation accepts.
        public static let invalidArgument = Code(.invalidArgument)
        /// The call's group, or the whole queue, already holds as many waiting calls as it may. An HTTP
        /// adapter answers 503.
        public static let queueFull = Code(.queueFull)
        /// The call's estimated wait is longer than the queue allows. An HTTP adapter answers 503.
        public static let waitTooLong = Code(.waitTooLong)
        /// A live task already has this id.
        public static let duplicateTask = Code(.duplicateTask)
        /// No live or remembered task has this id.
        public static let unknownTask = Code(.unknownTask)
        /// The call names a group the queue does not declare, and the queue rejects undeclared groups
        /// (``CallQueue/UndeclaredGroupPolicy/reject``).
        public static let unknownGroup = Code(.unknownGroup)
        /// A batch's body returned a different number of outputs than it was given inputs.
        public static let invalidBatchOutput = Code(.invalidBatchOutput)
        /// A cluster-wide group's lease was lost (the replica could not renew it in time: a pause, a partition,
        /// the database gone longer than the safety margin): the call was stopped, and its slot may already
        /// be someone else's. Retry the call.
        public static let leaseLost = Code(.leaseLost)
        /// A cluster-wide group's coordinator (the database) cannot be reached, or the replica is not running
        /// its service yet. Retry later; check the connection settings and that the service runs.
        public static let unavailable = Code(.unavailable)
        /// The coordinator's schema was made by a newer version of this library; upgrade every replica, or
        /// use a schema of its own for this version.
        public static let incompatibleSchema = Code(.incompatibleSchema)
        /// The call's fairness key already has as many calls waiting as its group allows
        /// (``FairShare/maxQueuedPerKey``); other keys are still admitted. ``CallQueueError/retryAfter`` says
        /// when the key's next call should start. An HTTP adapter answers 429 with `Retry-After`.
        public static let tooManyQueued = Code(.tooManyQueued)

        public var description: String { value.rawValue }
    }

    /// What kind of failure this is.
    public var code: Code
    /// What happened, in words suitable for a log line.
    public var message: String
    /// The concurrency group concerned, when there is one.
    public var group: ConcurrencyGroupID?
    /// The task concerned, when there is one.
    public var taskID: TaskID?
    /// For ``Code/queueFull``: how many calls were waiting, and the most allowed.
    public var queueSize: Int?
    public var maxQueueSize: Int?
    /// For ``Code/tooManyQueued``: the caller's own fairness key.
    public var fairnessKey: FairnessKey?
    /// For ``Code/tooManyQueued``, ``Code/queueFull`` and ``Code/waitTooLong``: how long until a retry may be
    /// admitted, from the queue's estimate (the key's next start, or the group's). An HTTP adapter sends it,
    /// rounded up to whole seconds, as `Retry-After`.
    public var retryAfter: Duration?

    /// Creates an error with a code and a message.
    public init(
        _ code: Code,
        _ message: String,
        group: ConcurrencyGroupID? = nil,
        taskID: TaskID? = nil,
        queueSize: Int? = nil,
        maxQueueSize: Int? = nil,
        fairnessKey: FairnessKey? = nil,
        retryAfter: Duration? = nil
    ) {
        self.code = code
        self.message = message
        self.group = group
        self.taskID = taskID
        self.queueSize = queueSize
        self.maxQueueSize = maxQueueSize
        self.fairnessKey = fairnessKey
        self.retryAfter = retryAfter
    }

    /// ``retryAfter`` in whole seconds, rounded up, as an HTTP `Retry-After` header carries it; at least 1.
    public var retryAfterSeconds: Int? {
        retryAfter.map { Int(max(1, min($0.seconds, Duration.etaLimit.seconds).rounded(.up))) }
    }

    public var description: String { "CallQueueError.\(code): \(message)" }
}

/// The wire format: the code as a string beside the message and the fields that are set, e.g.
/// `{"code":"queueFull","message":"group 'gpu' is full: …","group":"gpu","queueSize":100,"maxQueueSize":100,
/// "retryAfter":12.5}` (``retryAfter`` in seconds).
extension CallQueueError: Codable {
    private enum CodingKeys: String, CodingKey {
        case code, message, group, taskID, queueSize, maxQueueSize, fairnessKey, retryAfter
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let name = try container.decode(String.self, forKey: .code)
        guard let code = Code(name: name) else {
            throw DecodingError.dataCorruptedError(
                forKey: .code, in: container, debugDescription: "unknown CallQueueError code '\(name)'")
        }
        self.init(
            code,
            try container.decode(String.self, forKey: .message),
            group: try container.decodeIfPresent(ConcurrencyGroupID.self, forKey: .group),
            taskID: try container.decodeIfPresent(TaskID.self, forKey: .taskID),
            queueSize: try container.decodeIfPresent(Int.self, forKey: .queueSize),
            maxQueueSize: try container.decodeIfPresent(Int.self, forKey: .maxQueueSize),
            fairnessKey: try container.decodeIfPresent(FairnessKey.self, forKey: .fairnessKey),
            retryAfter: try container.decodeIfPresent(Double.self, forKey: .retryAfter).map { seconds in
                guard seconds.isFinite, seconds >= 0, seconds <= Duration.etaLimit.seconds else {
                    throw DecodingError.dataCorruptedError(
                        forKey: .retryAfter, in: container, debugDescription: "retryAfter \(seconds) is out of range")
                }
                return .seconds(seconds)
            }
        )
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(code.description, forKey: .code)
        try container.encode(message, forKey: .message)
        try container.encodeIfPresent(group, forKey: .group)
        try container.encodeIfPresent(taskID, forKey: .taskID)
        try container.encodeIfPresent(queueSize, forKey: .queueSize)
        try container.encodeIfPresent(maxQueueSize, forKey: .maxQueueSize)
        try container.encodeIfPresent(fairnessKey, forKey: .fairnessKey)
        try container.encodeIfPresent(retryAfter?.seconds, forKey: .retryAfter)
    }
}

extension CallQueueError.Code {
    /// Matches an error against a code, so that `catch CallQueueError.Code.timedOut` reads naturally.
    public static func ~= (code: CallQueueError.Code, error: any Error) -> Bool {
        (error as? CallQueueError)?.code == code
    }
}
