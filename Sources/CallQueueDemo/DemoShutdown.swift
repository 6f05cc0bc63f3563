import Dispatch
import Foundation

/// SIGTERM (or SIGINT) ends the demo as a server ends: no new client arrives, the queue shuts down (waiting
/// calls fail with `closed`, running ones get a grace period), and the report is printed.
final class DemoShutdown: @unchecked Sendable {
    private let lock = NSLock()
    private var signalName: String?
    private var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
    private var nextKey = 0
    private var sources: [any DispatchSourceSignal] = []

    /// The signal that stopped the run, if one did.
    var stoppedBy: String? { lock.withLock { signalName } }

    /// Traps `signals`; the first one stops the arrivals and calls `onStop`.
    func trap(_ signals: [(Int32, String)], onStop: @escaping @Sendable (String) -> Void) {
        for (number, name) in signals {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [self] in
                if stop(name) { onStop(name) }
            }
            source.resume()
            lock.withLock { sources.append(source) }
        }
    }

    /// Returns whether this call stopped the run (the first signal does).
    private func stop(_ name: String) -> Bool {
        let waiters = lock.withLock { () -> [CheckedContinuation<Void, Never>]? in
            guard signalName == nil else { return nil }
            signalName = name
            defer { self.waiters.removeAll() }
            return Array(self.waiters.values)
        }
        guard let waiters else { return false }
        for waiter in waiters { waiter.resume() }
        return true
    }

    /// Waits until `instant`; returns `false` at once when the run is stopped first.
    func sleep(until instant: ContinuousClock.Instant) async -> Bool {
        await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                try? await Task.sleep(until: instant)
                return true
            }
            group.addTask {
                await self.stopped()
                return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first && self.stoppedBy == nil
        }
    }

    private func stopped() async {
        let key = lock.withLock { () -> Int in
            nextKey += 1
            return nextKey
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let now = lock.withLock { () -> Bool in
                    if signalName != nil || Task.isCancelled { return true }
                    waiters[key] = continuation
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            // The sleep came first: this wait ends.
            lock.withLock { waiters.removeValue(forKey: key) }?.resume()
        }
    }
}
