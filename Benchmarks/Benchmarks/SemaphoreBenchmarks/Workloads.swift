import Baselines
import CMallocStats
import CallQueue
import Synchronization

/// What W2–W5 need from a semaphore, so the same workload code drives ours and the baseline.
protocol BenchmarkedSemaphore: Sendable {
    static var name: String { get }
    init(permits: Int)
    func acquire() async throws
    func release() async
    func waitingCount() async -> Int
    func tryAcquireAfterDrain() async -> Bool
}

struct OurSemaphore: BenchmarkedSemaphore {
    static var name: String { "FIFOSemaphore" }
    let semaphore: FIFOSemaphore
    init(permits: Int) { semaphore = FIFOSemaphore(permits: permits) }
    func acquire() async throws { try await semaphore.acquire() }
    func release() async { semaphore.release() }
    func waitingCount() async -> Int { semaphore.snapshot.waiting }
    func tryAcquireAfterDrain() async -> Bool { semaphore.tryAcquire() }
}

struct BaselineSemaphore: BenchmarkedSemaphore {
    static var name: String { "ActorFIFOSemaphore" }
    let semaphore: ActorFIFOSemaphore
    init(permits: Int) { semaphore = ActorFIFOSemaphore(permits: permits) }
    func acquire() async throws { try await semaphore.acquire() }
    func release() async { await semaphore.release() }
    func waitingCount() async -> Int { await semaphore.waitingCount }
    func tryAcquireAfterDrain() async -> Bool {
        // The baseline has no tryAcquire: a free permit makes acquire return without suspending.
        (try? await semaphore.acquire()) != nil
    }
}

/// A shared counter for task closures (an `Atomic` itself cannot be captured).
final class Counter: Sendable {
    let value = Atomic<Int>(0)
}

/// A shared, locked value for task closures (a `Mutex` itself cannot be captured).
final class Locked<Value: Sendable>: Sendable {
    let mutex: Mutex<Value>
    init(_ value: Value) { mutex = Mutex(value) }
    func withLock<Result: Sendable>(_ body: (inout sending Value) -> sending Result) -> Result {
        mutex.withLock(body)
    }
}

func nanoseconds(_ duration: Duration) -> Int {
    let parts = duration.components
    return Int(parts.seconds) * 1_000_000_000 + Int(parts.attoseconds / 1_000_000_000)
}

/// W2 / W3: `tasks` tasks each acquire and release `rounds` times. Returns ns per operation and the most
/// holders seen at once.
func contended<S: BenchmarkedSemaphore>(
    _: S.Type,
    permits: Int,
    tasks: Int = 1_000,
    rounds: Int = 1_000,
    yieldWhileHolding: Bool = false
) async -> (nanosecondsPerOperation: Int, mostHolders: Int) {
    let semaphore = S(permits: permits)
    let holders = Counter()
    let mostHolders = Counter()
    let start = ContinuousClock.now
    await withTaskGroup(of: Void.self) { group in
        for _ in 0..<tasks {
            group.addTask {
                for _ in 0..<rounds {
                    try! await semaphore.acquire()
                    let now = holders.value.wrappingAdd(1, ordering: .relaxed).newValue
                    _ = mostHolders.value.max(now, ordering: .relaxed)
                    if yieldWhileHolding { await Task.yield() }
                    holders.value.wrappingSubtract(1, ordering: .relaxed)
                    await semaphore.release()
                }
            }
        }
    }
    let elapsed = ContinuousClock.now - start
    return (nanoseconds(elapsed) / (tasks * rounds), mostHolders.value.load(ordering: .relaxed))
}

/// How many bytes `count` tasks cost while suspended on a bare continuation: the cost of a waiting task
/// itself, which W4 subtracts to get the semaphore's own share.
func bytesForSuspendedTasks(_ count: Int) async -> Int {
    let parked = Locked<[CheckedContinuation<Void, Never>]>([])
    parked.withLock { $0.reserveCapacity(count) }
    let before = cmallocstats_bytes_in_use()
    var during = before
    await withTaskGroup(of: Void.self) { group in
        for _ in 0..<count {
            group.addTask {
                await withCheckedContinuation { continuation in
                    parked.withLock { $0.append(continuation) }
                }
            }
        }
        while parked.withLock({ $0.count }) < count { await Task.yield() }
        during = cmallocstats_bytes_in_use()
        for continuation in parked.withLock({ $0 }) { continuation.resume() }
    }
    return Int(during) - Int(before)
}

struct DeepQueueResult {
    var drainNanoseconds: Int
    var bytesPerWaiter: Int
    var violations: Int
}

/// W4: hold the permit, queue `count` waiters one at a time (each queued before the next starts), release,
/// and let each acquire and release at once.
func deepQueue<S: BenchmarkedSemaphore>(_: S.Type, count: Int = 100_000) async -> DeepQueueResult {
    let semaphore = S(permits: 1)
    try! await semaphore.acquire()
    let order = Locked<[Int]>([])
    order.withLock { $0.reserveCapacity(count) }
    let lastAcquired = Locked<ContinuousClock.Instant?>(nil)
    let before = cmallocstats_bytes_in_use()
    var bytesPerWaiter = 0
    var released = ContinuousClock.now
    await withTaskGroup(of: Void.self) { group in
        for index in 0..<count {
            group.addTask {
                try! await semaphore.acquire()
                order.withLock { $0.append(index) }
                lastAcquired.withLock { $0 = ContinuousClock.now }
                await semaphore.release()
            }
            while await semaphore.waitingCount() <= index { await Task.yield() }
        }
        bytesPerWaiter = (Int(cmallocstats_bytes_in_use()) - Int(before)) / count
        released = ContinuousClock.now
        await semaphore.release()
    }
    let acquired = order.withLock { $0 }
    let violations = zip(acquired, acquired.dropFirst()).filter { $0 >= $1 }.count + (count - acquired.count)
    let drained = lastAcquired.withLock { $0 } ?? released
    return DeepQueueResult(
        drainNanoseconds: nanoseconds(drained - released),
        bytesPerWaiter: bytesPerWaiter,
        violations: violations
    )
}

/// W5: hold the permit, queue `count` waiters, cancel them all. Returns the time from the first cancel until
/// every waiter has thrown, and how many acquired instead (must be 0). Stops the process if the semaphore
/// does not work at once afterwards.
func cancelAll<S: BenchmarkedSemaphore>(_: S.Type, count: Int = 100_000) async -> (nanoseconds: Int, acquired: Int) {
    let semaphore = S(permits: 1)
    try! await semaphore.acquire()
    let acquired = Counter()
    var start = ContinuousClock.now
    await withTaskGroup(of: Void.self) { group in
        for _ in 0..<count {
            group.addTask {
                if (try? await semaphore.acquire()) != nil { acquired.value.add(1, ordering: .relaxed) }
            }
        }
        while await semaphore.waitingCount() < count { await Task.yield() }
        start = ContinuousClock.now
        group.cancelAll()
        await group.waitForAll()
    }
    let elapsed = ContinuousClock.now - start
    await semaphore.release()
    let worksAfterwards = await semaphore.tryAcquireAfterDrain()
    precondition(worksAfterwards, "\(S.name) did not grant a free permit after W5")
    return (nanoseconds(elapsed), acquired.value.load(ordering: .relaxed))
}
