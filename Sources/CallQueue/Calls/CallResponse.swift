/// The outputs to return when a wrapped call fails: AUTOMATIC1111's `extra_outputs`, as a value or made
/// anew for each failure.
public enum CallFallback<Output: Sendable>: Sendable {
    case value(Output)
    case make(@Sendable () -> Output)

    func callAsFunction() -> Output {
        switch self {
        case .value(let output): return output
        case .make(let make): return make()
        }
    }
}

/// What a wrapped call returns, success or not: AUTOMATIC1111's wrappers never throw the body's error.
///
/// Renders as AUTOMATIC1111's HTML (``html``: the error `div`, then the performance block), as one plain
/// line (``plainText``), and as `Codable` when the outputs are.
public struct CallResponse<Output: Sendable>: Sendable {
    /// The error of a failed call: its type name, message, and code when it is a ``CallQueueError`` (a
    /// server maps `"queueFull"` and `"waitTooLong"` to 503 without reading the text).
    public struct Failure: Sendable, Hashable, Codable {
        public var type: String
        public var message: String
        public var code: String?

        public init(type: String, message: String, code: String? = nil) {
            self.type = type
            self.message = message
            self.code = code
        }

        init(_ error: any Error) {
            type = String(describing: Swift.type(of: error))
            message = CallQueue.errorMessage(error)
            code = (error as? CallQueueError)?.code.description
        }

        /// `"TypeName: message"`.
        public var text: String { "\(type): \(message)" }
    }

    /// The task, for job calls.
    public var taskID: TaskID?
    /// The call's outputs; on failure, the fallback's (`nil` when there is none).
    public var outputs: Output?
    /// Why the call failed, `nil` when it succeeded.
    public var failure: Failure?
    /// Whether the call was cancelled rather than failed.
    public var wasCancelled: Bool
    /// What the call cost.
    public var stats: PerfStats

    public var succeeded: Bool { failure == nil && !wasCancelled }

    /// AUTOMATIC1111's error block: `<div class='error'>TypeName: message</div>`, HTML-escaped.
    public var errorHTML: String? {
        failure.map { "<div class='error'>" + htmlEscaped($0.text) + "</div>" }
    }

    /// The HTML AUTOMATIC1111 puts in a call's last output: the error block on failure, then the
    /// performance block.
    public var html: String {
        (errorHTML ?? "") + stats.html
    }

    /// One line for logs: `task(abc) succeeded: ran 4.3 sec., queued 0.2 sec.`
    public var plainText: String {
        let subject = taskID.map { "\($0) " } ?? ""
        if let failure {
            return "\(subject)failed (\(failure.text)): \(stats.plainText)"
        }
        return "\(subject)\(wasCancelled ? "was cancelled" : "succeeded"): \(stats.plainText)"
    }
}

extension CallResponse: Equatable where Output: Equatable {}
extension CallResponse: Hashable where Output: Hashable {}
extension CallResponse: Codable where Output: Codable {}

extension CallResponse {
    /// The response of a call that did not run: not admitted (queue full), or failed before it started.
    public init(notRun error: any Error, taskID: TaskID? = nil, outputs: Output? = nil) {
        self.taskID = taskID
        self.outputs = outputs
        wasCancelled = error is CancellationError
        failure = wasCancelled ? nil : Failure(error)
        stats = PerfStats(queued: .zero, running: .zero)
    }

    init(_ outcome: CallQueue.JobOutcome<Output>, fallback: CallFallback<Output>?) {
        taskID = outcome.taskID
        stats = outcome.stats
        switch outcome.result {
        case .success(let output):
            outputs = output
            failure = nil
            wasCancelled = false
        case .failure(let error):
            outputs = fallback?()
            wasCancelled = error is CancellationError
            failure = wasCancelled ? nil : Failure(error)
        }
    }
}
