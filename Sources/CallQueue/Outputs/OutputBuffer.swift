/// One task's partial outputs: its newest latest value and a bounded window of its chunks. Guarded by the
/// scheduler's lock; readers hold a reference, so a task's last outputs stay readable by the readers that
/// followed it after it leaves the live table.
final class OutputBuffer: @unchecked Sendable {
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

    /// Values a step took out of the buffer, released by the caller after the lock (a value's `deinit` may be
    /// the application's code). One value, the usual case of a full window, takes no allocation.
    struct Dropped: Sendable {
        private var first: (any PartialOutput)?
        private var rest: [any PartialOutput] = []

        init() {}

        init(_ value: any PartialOutput) {
            first = value
        }

        mutating func append(_ value: any PartialOutput) {
            if first == nil { first = value } else { rest.append(value) }
        }
    }

    /// The values and counts, in one struct: an emit changes it in one access.
    struct Window {
        struct Entry {
            var value: any PartialOutput
            var bytes: Int
        }

        let limits: PartialOutputLimits
        var latest: (any PartialOutput)?
        var latestBytes = 0
        /// Counts latest values kept; a reader remembers the count it last read.
        var latestSequence: UInt64 = 0
        /// `storage[head...]` holds the chunks with indices `firstIndex..<nextIndex`.
        var storage: [Entry] = []
        var head = 0
        var chunkBytes = 0
        /// The index of the oldest chunk kept.
        var firstIndex = 0
        /// The index the next chunk gets: the number of chunks ever emitted.
        var nextIndex = 0

        var bufferedBytes: Int { chunkBytes + latestBytes }
        var bufferedChunks: Int { nextIndex - firstIndex }

        mutating func append(_ value: any PartialOutput, bytes: Int) -> (kept: Bool, dropped: Dropped) {
            storage.append(Entry(value: value, bytes: bytes))
            nextIndex += 1
            chunkBytes += bytes
            var dropped = Dropped()
            while bufferedChunks > limits.maxBufferedChunks
                || (bufferedBytes > limits.maxBufferedBytes && head < storage.count)
            {
                dropped.append(dropOldest())
            }
            compactIfNeeded()
            return (firstIndex < nextIndex, dropped)
        }

        mutating func setLatest(_ value: any PartialOutput, bytes: Int) -> (kept: Bool, dropped: Dropped) {
            guard bytes <= limits.maxBufferedBytes else { return (false, Dropped(value)) }
            var dropped = Dropped()
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

        private mutating func dropOldest() -> any PartialOutput {
            let entry = storage[head]
            // The slot keeps an empty string, so the dropped value is released by the caller, after the lock.
            storage[head] = Entry(value: "", bytes: 0)
            head += 1
            firstIndex += 1
            chunkBytes -= entry.bytes
            return entry.value
        }

        private mutating func compactIfNeeded() {
            if head > 32 && head * 2 > storage.count {
                storage.removeFirst(head)
                head = 0
            }
        }

        func delta(from nextChunk: Int, latestSeen: UInt64) -> Delta {
            let start = max(nextChunk, firstIndex)
            var chunks: [any PartialOutput] = []
            chunks.reserveCapacity(nextIndex - start)
            for position in (head + start - firstIndex)..<storage.count { chunks.append(storage[position].value) }
            return Delta(
                latest: latestSeen != latestSequence ? latest : nil,
                chunks: chunks,
                firstIndex: start,
                missed: start - nextChunk
            )
        }
    }

    private(set) var window: Window
    /// Readers parked until this task emits; woken, and forgotten, at the next emit.
    var parkedReaders: [ObjectIdentifier: UpdateSubscription] = [:]

    init(limits: PartialOutputLimits) {
        window = Window(limits: limits)
    }

    /// A buffer for a reader that comes after the task finished: its last latest value, and an empty window
    /// after its chunks, so that the reader is told how many it missed.
    convenience init(limits: PartialOutputLimits, finished: LifecycleState.FinishedOutputs?) {
        self.init(limits: limits)
        guard let finished else { return }
        if let latest = finished.latest {
            window.latest = latest
            window.latestSequence = 1
        }
        window.firstIndex = finished.chunkCount
        window.nextIndex = finished.chunkCount
    }

    var latest: (any PartialOutput)? { window.latest }
    var latestSequence: UInt64 { window.latestSequence }
    var firstIndex: Int { window.firstIndex }
    var nextIndex: Int { window.nextIndex }
    var bufferedBytes: Int { window.bufferedBytes }
    var bufferedChunks: Int { window.bufferedChunks }

    /// Appends a chunk and drops the oldest past the limits. Returns whether the chunk is kept, and the values
    /// dropped, to be released after the lock.
    func append(_ value: any PartialOutput, bytes: Int) -> (kept: Bool, dropped: Dropped) {
        window.append(value, bytes: bytes)
    }

    /// Replaces the latest value, unless it alone is larger than the byte budget; drops the oldest chunks to
    /// make room. Returns whether it is kept, and the values dropped.
    func setLatest(_ value: any PartialOutput, bytes: Int) -> (kept: Bool, dropped: Dropped) {
        window.setLatest(value, bytes: bytes)
    }

    /// Whether a reader at `nextChunk` that last read latest number `latestSeen` has something to read.
    func hasNews(nextChunk: Int, latestSeen: UInt64) -> Bool {
        nextChunk < window.nextIndex || latestSeen != window.latestSequence
    }

    /// What a reader at `nextChunk`, that last read latest number `latestSeen`, has not read yet.
    func delta(from nextChunk: Int, latestSeen: UInt64) -> Delta {
        window.delta(from: nextChunk, latestSeen: latestSeen)
    }
}
