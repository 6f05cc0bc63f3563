/// A value a running call emits before it finishes: a token, a log line, a preview image.
///
/// A call emits two kinds through ``CallContext``: *chunks* (``CallContext/emitChunk(_:)``), which every
/// reader gets in order, and a *latest* value (``CallContext/emitLatest(_:)``), of which readers get the
/// newest. Readers follow them with ``CallQueue/outputs(of:latest:chunks:after:)``.
///
/// Each task's buffered outputs are bounded by ``PartialOutputLimits``, counted in the bytes each value
/// says it holds. Count what the value keeps alive on the heap, not only its inline size:
///
/// ```swift
/// struct Preview: PartialOutput, Codable {
///     var step: Int
///     var png: [UInt8]
///     var outputByteCount: Int { png.count + 8 }
/// }
/// ```
public protocol PartialOutput: Sendable {
    /// The bytes this value holds, counted against the task's ``PartialOutputLimits/maxBufferedBytes``.
    /// A negative count reads as 0. Read once per emit, before the queue's lock is taken.
    var outputByteCount: Int { get }
}

extension String: PartialOutput {
    /// The length of its UTF-8 form.
    public var outputByteCount: Int { utf8.count }
}

extension Substring: PartialOutput {
    /// The length of its UTF-8 form.
    public var outputByteCount: Int { utf8.count }
}

extension Array: PartialOutput where Element == UInt8 {
    /// Its count.
    public var outputByteCount: Int { count }
}

/// How much of a task's partial outputs the queue keeps, whatever its readers do.
///
/// Chunks are kept in a window: when an emit takes the window past ``maxBufferedChunks`` or the task's
/// outputs past ``maxBufferedBytes``, the oldest chunks are dropped first, and a reader that had not read
/// them is told how many it missed (``TaskOutputUpdate/missedChunks``). The latest value counts against the
/// same byte budget and is never dropped for a chunk; a latest value larger than the whole budget is not
/// kept (its emit returns `false`, and readers keep the previous one).
public struct PartialOutputLimits: Sendable, Hashable {
    /// The most chunks a task keeps for readers (default 1,024). At least 1.
    public var maxBufferedChunks: Int
    /// The most bytes a task's kept chunks and latest value hold together, as their
    /// ``PartialOutput/outputByteCount`` says (default 1 MiB). At least 1.
    public var maxBufferedBytes: Int

    /// Limits; every parameter has the default described on its property.
    public init(maxBufferedChunks: Int = 1024, maxBufferedBytes: Int = 1 << 20) {
        self.maxBufferedChunks = maxBufferedChunks
        self.maxBufferedBytes = maxBufferedBytes
    }

    func validated() throws -> PartialOutputLimits {
        guard maxBufferedChunks >= 1, maxBufferedBytes >= 1 else {
            throw CallQueueError(
                .invalidArgument,
                "partial output limits must keep at least one chunk and one byte (maxBufferedChunks "
                    + "\(maxBufferedChunks), maxBufferedBytes \(maxBufferedBytes)); a task that emits nothing "
                    + "costs nothing, so there is no need to turn them off")
        }
        return self
    }
}
