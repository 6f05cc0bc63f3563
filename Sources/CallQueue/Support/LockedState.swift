#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#else
    #error("LockedState needs pthread mutexes on this platform")
#endif

/// A value guarded by a `pthread_mutex_t`.
///
/// This is the library's one lock. It is built on a pthread mutex rather than `Synchronization.Mutex`
/// because ThreadSanitizer intercepts pthread calls but not the raw futex calls `Mutex` makes on Linux:
/// with `Mutex`, correctly locked code is reported as racing. Keep every lock in the library on this type
/// so that choice is made in one place.
@usableFromInline
final class LockedState<State>: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private var state: State

    @usableFromInline
    init(_ state: State) {
        self.state = state
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        let result = pthread_mutex_init(mutex, nil)
        precondition(result == 0, "pthread_mutex_init failed with \(result)")
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deinitialize(count: 1)
        mutex.deallocate()
    }

    /// Runs `body` with exclusive access to the state.
    ///
    /// Never suspend, resume a continuation, or call user code inside `body`: return what must happen and
    /// do it after the lock is dropped.
    @usableFromInline
    func withLock<Result>(_ body: (inout State) throws -> Result) rethrows -> Result {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&state)
    }
}
