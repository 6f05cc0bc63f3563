/// A task's partial outputs with its statuses, as an `AsyncSequence`: what the task has emitted and how it
/// stands, from now until it finishes. Made by ``CallQueue/outputs(of:latest:chunks:after:)`` and
/// ``TaskLifecycle/outputs(of:latest:chunks:after:)``.
///
/// Each element holds everything new since the reader's last element: the status if it changed, the newest
/// latest value if it changed (coalesced: a slow reader skips the ones in between), and every chunk emitted
/// since, in order. Statuses behave as in ``TaskUpdates``. The last element carries the finished status,
/// with the chunks the reader had not read yet; the sequence then ends.
///
/// A reader that starts late gets the newest latest value at once, and the chunks still in the task's
/// window (``PartialOutputLimits``); its first element says how many it missed. A reader that reads slower
/// than the task emits also misses the chunks dropped from the window before it read them; the memory a task
/// uses is bounded by the limits whatever its readers do, and a reader that never reads costs nothing per
/// emit.
///
/// A reader that comes after the task finished gets its final status and its last latest value, in one
/// element, and the count of the chunks it missed: the chunks are gone once the task finishes (a call returns
/// its whole output as its result), their number stays in the history with its status.
///
/// Values are read as the types the reader names: a latest value of another type reads as `nil`, and a
/// chunk of another type counts as missed. One consumer at a time, as for ``TaskUpdates``; cancelling the
/// consuming task ends the sequence, not the task it follows.
///
/// ```swift
/// for await update in try queue.outputs(of: id, chunks: String.self) {
///     for chunk in update.chunks { send(event: "token", id: chunk.index, data: chunk.value) }
///     if let status = update.status { send(event: "status", data: status) }
/// }
/// ```
public struct TaskOutputs<Latest: Sendable, Chunk: Sendable>: AsyncSequence, Sendable {
    public typealias Element = TaskOutputUpdate<Latest, Chunk>
    public typealias Failure = Never

    let token: SubscriptionToken

    public func makeAsyncIterator() -> Iterator {
        Iterator(token: token)
    }

    public struct Iterator: AsyncIteratorProtocol {
        let token: SubscriptionToken

        public mutating func next() async -> Element? {
            await next(isolation: nil)
        }

        public mutating func next(isolation actor: isolated (any Actor)?) async -> Element? {
            guard let step = await token.nextStep() else { return nil }
            switch step {
            case .status(let status):
                // Not made for a reader of outputs; read as a status alone.
                return Element(taskID: token.subscription.taskID, status: status, delta: .nothing(at: 0))
            case .outputs(let status, let delta):
                return Element(taskID: token.subscription.taskID, status: status, delta: delta)
            case .end, .woken, .secondConsumer:
                return nil
            }
        }
    }
}

/// One chunk of a task's partial outputs, with its place in the task's stream.
public struct OutputChunk<Value: Sendable>: Sendable {
    /// Its place among the task's chunks, from 0. Send it as a server-sent event's `id:`; a client that
    /// reconnects with `Last-Event-ID` resumes after it (``CallQueue/outputs(of:latest:chunks:after:)``).
    public var index: Int
    /// The value the call emitted.
    public var value: Value

    public init(index: Int, value: Value) {
        self.index = index
        self.value = value
    }
}

extension OutputChunk: Equatable where Value: Equatable {}
extension OutputChunk: Hashable where Value: Hashable {}

/// What a task emitted and how it stands, since the reader's last element: an element of ``TaskOutputs``.
///
/// The chunks and the latest value in an element were emitted before its status was made, so a client that
/// handles the chunks first, then the status, shows them in the order they happened.
///
/// Encodes as one JSON object (`status` as ``TaskStatus`` encodes; absent values left out):
///
/// ```json
/// {"id":"task(3f2a)","status":{"id":"task(3f2a)","group":"gpu","version":57,"state":"running",
///  "slot":0,"progress":0.4,"step":"8/20","elapsed":2.5,"eta":3.75},
///  "latest":{"step":8,"caption":"a red"},
///  "chunks":[{"index":12,"value":" red"},{"index":13,"value":" fox"}],"missedChunks":0,"nextChunk":14}
/// ```
public struct TaskOutputUpdate<Latest: Sendable, Chunk: Sendable>: Sendable {
    /// The task.
    public var taskID: TaskID
    /// Its status, when it changed since the reader's last element; the last element holds the finished one.
    public var status: TaskStatus?
    /// The newest latest value, when a newer one was emitted since the reader's last element.
    public var latest: Latest?
    /// The chunks emitted since the reader's last element, in order.
    public var chunks: [OutputChunk<Chunk>]
    /// Chunks this reader will never get, counted since its last element: dropped from the task's window
    /// before it read them (it started late or read slowly), or not of type `Chunk`.
    public var missedChunks: Int
    /// The index the task's next chunk will get: where a reader that resumes from here starts.
    public var nextChunk: Int

    public init(
        taskID: TaskID, status: TaskStatus?, latest: Latest?, chunks: [OutputChunk<Chunk>], missedChunks: Int,
        nextChunk: Int
    ) {
        self.taskID = taskID
        self.status = status
        self.latest = latest
        self.chunks = chunks
        self.missedChunks = missedChunks
        self.nextChunk = nextChunk
    }

    init(taskID: TaskID, status: TaskStatus?, delta: OutputBuffer.Delta) {
        var chunks: [OutputChunk<Chunk>] = []
        var missed = delta.missed
        chunks.reserveCapacity(delta.chunks.count)
        for (offset, value) in delta.chunks.enumerated() {
            if let chunk = value as? Chunk {
                chunks.append(OutputChunk(index: delta.firstIndex + offset, value: chunk))
            } else {
                missed += 1
            }
        }
        self.init(
            taskID: taskID, status: status, latest: delta.latest.flatMap { $0 as? Latest }, chunks: chunks,
            missedChunks: missed, nextChunk: delta.firstIndex + delta.chunks.count)
    }

    /// Whether this is the sequence's last element: the task finished.
    public var isFinal: Bool { status?.isFinished == true }
}

extension OutputChunk: Encodable where Value: Encodable {}
extension OutputChunk: Decodable where Value: Decodable {}
extension TaskOutputUpdate: Equatable where Latest: Equatable, Chunk: Equatable {}

/// The wire format: see ``TaskOutputUpdate``. Chunks as `{"index":…,"value":…}`; `status` and `latest` left
/// out when absent.
extension TaskOutputUpdate: Codable where Latest: Codable, Chunk: Codable {
    private enum CodingKeys: String, CodingKey {
        case id, status, latest, chunks, missedChunks, nextChunk
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(taskID, forKey: .id)
        try container.encodeIfPresent(status, forKey: .status)
        try container.encodeIfPresent(latest, forKey: .latest)
        try container.encode(chunks, forKey: .chunks)
        try container.encode(missedChunks, forKey: .missedChunks)
        try container.encode(nextChunk, forKey: .nextChunk)
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            taskID: try container.decode(TaskID.self, forKey: .id),
            status: try container.decodeIfPresent(TaskStatus.self, forKey: .status),
            latest: try container.decodeIfPresent(Latest.self, forKey: .latest),
            chunks: try container.decode([OutputChunk<Chunk>].self, forKey: .chunks),
            missedChunks: try container.decode(Int.self, forKey: .missedChunks),
            nextChunk: try container.decode(Int.self, forKey: .nextChunk)
        )
    }
}
