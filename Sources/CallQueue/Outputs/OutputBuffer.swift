/// One task's partial outputs: its newest latest value and a bounded window of its chunks. Every field is
/// guarded by the scheduler's lock; readers hold a reference, so a task's last outputs stay readable by the
/// readers that followed it after it leaves the live table.
final class OutputBuffer: @unchecked Sendable {
    struct Entry {
        var value: any PartialOutput
        var bytes: Int
    }

    /// What a reader has not read yet, taken from the buffer in one step.
    struct Delta: Sendable {
        /// The newest latest value, when it changed since the reader's last read.
        var latest: (any PartialOutput)?
        /// The chunks, in order, starting at `firstIndex`.
        var chunks: [any PartialOutput]
        var firstIndex: Int
        /// Chunks dropped from the window before the reader read them.
        var missed: Int

        /// Nothing new, for a reader at `nextChunk`.
        static func nothing(at nextChunk: Int) -> Delta {
            Delta(latest: nil, chunks: [], firstIndex: nextChunk, missed: 0)
        }
    }

    let limits: PartialOutputLimits
    private(set) var latest: (any PartialOutput)?
    private var latestBytes = 0
    /// Counts latest values kept; a reader remembers the count it last read.
    private(set) var latestSequence: UInt64 = 0
    /// The window: `storage[head...]` holds the chunks with indices `firstIndex..<nextIndex`.
    private var storage: [Entry] = []
    private var head = 0
    private var chunkBytes = 0
    /// The index of the oldest chunk kept.
    private(set) var firstIndex = 0
    /// The index the next chunk gets: the number of chunks ever emitted.
    private(set) var nextIndex = 0
    /// Readers parked until this task emits; woken, and forgotten, at the next emit.
    var parkedReaders: [ObjectIdentifier: UpdateSubscription] = [:]

    init(limits: PartialOutputLimits) {
        self.limits = limits
    }

    /// A buffer holding only a finished task's last latest value, for a reader that comes after the finish.
    convenience init(limits: PartialOutputLimits, finishedLatest: (any PartialOutput)?) {
        self.init(limits: limits)
        if let finishedLatest {
            latest = finishedLatest
            latestSequence = 1
        }
    }

    var bufferedBytes: Int { chunkBytes + latestBytes }
    var bufferedChunks: Int { nextIndex - firstIndex }

    /// Appends a chunk and drops the oldest past the limits. Returns whether the chunk is kept, and the values
    /// dropped, to be released after the lock.
    func append(_ value: any PartialOutput, bytes: Int) -> (kept: Bool, dropped: [any PartialOutput]) {
        storage.append(Entry(value: value, bytes: bytes))
        nextIndex += 1
        chunkBytes += bytes
        var dropped: [any PartialOutput] = []
        while bufferedChunks > limits.maxBufferedChunks
            || (bufferedBytes > limits.maxBufferedBytes && head < storage.count)
        {
            dropped.append(dropOldest())
        }
        compactIfNeeded()
        return (firstIndex < nextIndex, dropped)
    }

    /// Replaces the latest value, unless it alone is larger than the byte budget; drops the oldest chunks to
    /// make room. Returns whether it is kept, and the values dropped.
    func setLatest(_ value: any PartialOutput, bytes: Int) -> (kept: Bool, dropped: [any PartialOutput]) {
        guard bytes <= limits.maxBufferedBytes else { return (false, [value]) }
        var dropped: [any PartialOutput] = []
        if let old = latest { dropped.append(old) }
        latest = value
        latestBytes = bytes
        latestSequence += 1
        while bufferedBytes > limits.maxBufferedBytes && head < storage.count {
            dropped.append(dropOldest())
        }
        compactIfNeeded()
        return (true, dropped)
    }

    private func dropOldest() -> any PartialOutput {
        let entry = storage[head]
        // The slot keeps an empty string, so the dropped value is released by the caller, after the lock.
        storage[head] = Entry(value: "", bytes: 0)
        head += 1
        firstIndex += 1
        chunkBytes -= entry.bytes
        return entry.value
    }

    private func compactIfNeeded() {
        if head > 32 && head * 2 > storage.count {
            storage.removeFirst(head)
            head = 0
        }
    }

    /// Whether a reader at `nextChunk` that last read latest number `latestSeen` has something to read.
    func hasNews(nextChunk: Int, latestSeen: UInt64) -> Bool {
        nextChunk < nextIndex || latestSeen != latestSequence
    }

    /// What a reader at `nextChunk`, that last read latest number `latestSeen`, has not read yet.
    func delta(from nextChunk: Int, latestSeen: UInt64) -> Delta {
        let start = max(nextChunk, firstIndex)
        let offset = head + (start - firstIndex)
        var chunks: [any PartialOutput] = []
        chunks.reserveCapacity(nextIndex - start)
        for position in offset..<storage.count { chunks.append(storage[position].value) }
        return Delta(
            latest: latestSeen != latestSequence ? latest : nil,
            chunks: chunks,
            firstIndex: start,
            missed: start - nextChunk
        )
    }
}
