/// What a call carries for a group with fair share: its ``FairnessKey`` and its ``CallPriority``.
///
/// Pass it to a queued call (`runGPUCall(id:group:weight:fairness:deadline:_:)`,
/// ``CallQueue/submit(id:group:weight:fairness:deadline:_:)``, a batcher's member, a wrapper). A call that
/// passes none takes ``current``, a task-local value: a server's middleware sets it once per request, from the
/// client's session, and every queued call the request makes carries it.
///
/// ```swift
/// try await CallFairness.$current.withValue(CallFairness(key: FairnessKey(sessionID))) {
///     try await queue.runGPUCall(group: "gpu") { _ in render(prompt) }
/// }
/// ```
public struct CallFairness: Sendable, Hashable {
    /// Whose call this is; `nil`: the one key shared by every call without one.
    public var key: FairnessKey?
    /// How urgent it is.
    public var priority: CallPriority

    /// A call's key and priority.
    public init(key: FairnessKey? = nil, priority: CallPriority = .normal) {
        self.key = key
        self.priority = priority
    }

    /// What a queued call that passes no ``CallFairness`` carries: no key and normal priority, unless the
    /// task (a request's handler) set it.
    @TaskLocal public static var current = CallFairness()
}
