import Foundation

// Helpers the test targets share: a gate to hold tasks without clocks, a recorder of what happened in
// which order, and a counter of bodies running at once. No XCTest here, so any target can depend on it.

/// A value behind an `NSLock`. Not `Synchronization.Mutex`: on Linux it locks with raw futex calls that
/// ThreadSanitizer does not see, so the sanitizer run would report correctly locked code as racing.
final class Guarded<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value

    init(_ value: Value) {
        self.value = value
    }

    func withLock<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}

/// A one-shot latch: tasks wait until someone opens it. No clocks involved.
public final class Gate: Sendable {
    private let state = Guarded<(isOpen: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    public init() {}

    /// Opens the gate: every waiting task goes on, and later waits return at once.
    public func open() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.isOpen = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns once the gate is open.
    public func wait() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let resumeNow = state.withLock { state -> Bool in
                if state.isOpen { return true }
                state.waiters.append(continuation)
                return false
            }
            if resumeNow { continuation.resume() }
        }
    }
}

/// A thread-safe list that records the order in which things happen.
public final class Recorder<Element: Sendable>: Sendable {
    private let state = Guarded<[Element]>([])

    public init() {}

    public func append(_ element: Element) {
        state.withLock { $0.append(element) }
    }

    public var elements: [Element] { state.withLock { $0 } }
    public var count: Int { state.withLock { $0.count } }
}

/// Counts holders and remembers the most seen at once.
public final class HolderCounter: Sendable {
    private let state = Guarded<(current: Int, most: Int)>((0, 0))

    public init() {}

    public func enter(_ weight: Int = 1) {
        state.withLock { state in
            state.current += weight
            state.most = max(state.most, state.current)
        }
    }

    public func leave(_ weight: Int = 1) {
        state.withLock { $0.current -= weight }
    }

    public var most: Int { state.withLock { $0.most } }
    public var current: Int { state.withLock { $0.current } }
}

/// A seeded generator (SplitMix64), so a model-based test replays the same operations from its seed.
public struct SeededRandom: RandomNumberGenerator, Sendable {
    public var state: UInt64

    public init(seed: UInt64) {
        state = seed
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
