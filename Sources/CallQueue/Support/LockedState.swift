#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#else
    #error("LockedState needs pthread mutexes on this platform")
#endif

/// A value guarded by a `pthread_mutex_t`, in the manner of swift-nio's `NIOLockedValueBox`.
///
/// This is the library's one lock. It is built on a pthread mutex rather than `Synchronization.Mutex`
/// because ThreadSanitizer intercepts pthread calls but not the raw futex calls `Mutex` makes on Linux:
/// with `Mutex`, correctly locked code is reported as racing. Keep every lock in the library on this type
/// so that choice is made in one place. It is `Sendable` only when its state is. Debug builds use an
/// error-checking mutex, so relocking from the same thread or unlocking a mutex not held stops with a
/// message instead of hanging; every return code is checked.
@usableFromInline
final class LockedState<State> {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private var state: State

    @usableFromInline
    init(_ state: State) {
        self.state = state
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        var attributes = pthread_mutexattr_t()
        pthread_mutexattr_init(&attributes)
        defer { pthread_mutexattr_destroy(&attributes) }
        #if DEBUG
            pthread_mutexattr_settype(&attributes, Int32(PTHREAD_MUTEX_ERRORCHECK))
        #endif
        let result = pthread_mutex_init(mutex, &attributes)
        precondition(result == 0, "pthread_mutex_init failed with \(result)")
    }

    deinit {
        let result = pthread_mutex_destroy(mutex)
        precondition(result == 0, "pthread_mutex_destroy failed with \(result)")
        mutex.deinitialize(count: 1)
        mutex.deallocate()
    }

    /// Runs `body` with exclusive access to the state.
    ///
    /// Never suspend, resume a continuation, or call user code inside `body`: return what must happen and
    /// do it after the lock is dropped.
    @usableFromInline
    func withLock<Result>(_ body: (inout State) throws -> Result) rethrows -> Result {
        let locked = pthread_mutex_lock(mutex)
        precondition(locked == 0, "pthread_mutex_lock failed with \(locked): relocked on the same thread?")
        defer {
            let unlocked = pthread_mutex_unlock(mutex)
            precondition(unlocked == 0, "pthread_mutex_unlock failed with \(unlocked)")
        }
        return try body(&state)
    }
}

extension LockedState: @unchecked Sendable where State: Sendable {}
