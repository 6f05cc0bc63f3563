/// Receives a ``CallQueue``'s events: the seam for logging and metrics. Every method has an empty default.
///
/// Methods are called on the task that caused the event, never under the queue's locks; keep them quick
/// and non-blocking.
public protocol CallQueueObserver: Sendable {
    /// A task changed state: queued, started, or finished (with its outcome).
    func taskDidChange(_ status: TaskStatus)
    /// A wrapped call failed; `report` carries the error and the call's arguments, cut to length.
    func callDidFail(_ report: CallFailureReport)
    /// A GPU job ended (however it ended); `stats` is what it cost, memory peaks included when sampled.
    func callDidFinish(taskID: TaskID, group: ConcurrencyGroupID, stats: PerfStats)
    /// A batch's body returned: how many members it had, and what it cost.
    func batchDidRun(group: ConcurrencyGroupID, size: Int, stats: PerfStats)
}

extension CallQueueObserver {
    public func taskDidChange(_ status: TaskStatus) {}
    public func callDidFail(_ report: CallFailureReport) {}
    public func callDidFinish(taskID: TaskID, group: ConcurrencyGroupID, stats: PerfStats) {}
    public func batchDidRun(group: ConcurrencyGroupID, size: Int, stats: PerfStats) {}
}

/// A failed call, as AUTOMATIC1111's "Error completing request" log reports it.
public struct CallFailureReport: Sendable, Hashable, Codable {
    /// The task, when the call was a job.
    public var taskID: TaskID?
    /// The error's type name, e.g. `"DecodingError"`.
    public var errorType: String
    /// The error's message.
    public var message: String
    /// `"Arguments: (...)"`, cut to ``argumentLimit`` characters with a note of the original length.
    public var arguments: String

    /// AUTOMATIC1111's limit on the logged argument text: 131,072 characters.
    public static let argumentLimit = 131_072

    /// Builds the argument text, cutting it with a note when it is longer than ``argumentLimit``.
    /// (AUTOMATIC1111 tests the length after cutting, so its note never appears; this one does.)
    public static func argumentText(_ arguments: [Any]) -> String {
        let text = "Arguments: (" + arguments.map { String(reflecting: $0) }.joined(separator: ", ") + ")"
        guard text.count > argumentLimit else { return text }
        return String(text.prefix(argumentLimit))
            + " (Argument list truncated at \(argumentLimit)/\(text.count) characters)"
    }
}
