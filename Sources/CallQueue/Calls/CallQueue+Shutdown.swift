#if ServiceLifecycle
    import ServiceLifecycle
#endif

// The queue's part in the application's life: it runs until the application shuts down, then stops admitting,
// lets running calls finish within a grace period, cancels what is left, and ends with none of its own tasks
// alive.

extension CallQueue {
    /// Runs the queue as part of the application's life, and shuts it down at the end of it.
    ///
    /// Returns after a shutdown, which starts when ``close()`` is called, when the calling task is cancelled,
    /// or (with the `ServiceLifecycle` trait, where the queue is a `Service`) on a graceful shutdown of its
    /// service group. It then does what ``shutdown(gracePeriod:)`` does, with
    /// ``Configuration/shutdownGracePeriod`` (none when the task was cancelled: running calls are cancelled at
    /// once, and `run()` returns without waiting for their bodies).
    ///
    /// ```swift
    /// let group = ServiceGroup(services: [queue, server], gracefulShutdownSignals: [.sigterm], logger: logger)
    /// try await group.run()
    /// ```
    public func run() async {
        #if ServiceLifecycle
            await withGracefulShutdownHandler {
                await shutdownRequested.wait()
            } onGracefulShutdown: {
                self.close()
            }
        #else
            await shutdownRequested.wait()
        #endif
        await shutdown(gracePeriod: Task.isCancelled ? .zero : configuration.shutdownGracePeriod)
    }

    /// Shuts the queue down and waits until it has stopped.
    ///
    /// 1. It stops admitting: every later call fails with ``CallQueueError/Code/closed`` (a server answers
    ///    503), and so does every waiting call, at once.
    /// 2. Running calls finish, for up to `gracePeriod` on the queue's clock.
    /// 3. Then every running tracked call is cancelled (its body sees `Task.isCancelled`), and the shutdown
    ///    waits for the bodies to return: a slot is only given back when its body exits. A body that ignores
    ///    cancellation, or an untracked ``runQueued(group:weight:fairness:deadline:isolation:_:)`` call, is waited for.
    /// 4. The queue's own tasks (submitted jobs, batches, position flushes, cluster senders) end, and its memory
    ///    samplers stop.
    ///
    /// Calling it again, or while ``run()`` shuts down, waits for the same end. Cancelling the calling task
    /// skips the waiting: running calls are cancelled at once and it returns.
    ///
    /// - Parameter gracePeriod: How long running calls may take to finish; `nil`:
    ///   ``Configuration/shutdownGracePeriod``. Negative counts as zero.
    public func shutdown(gracePeriod: Duration? = nil) async {
        close()
        let grace = max(gracePeriod ?? configuration.shutdownGracePeriod, .zero)
        if !(await drained(within: grace)) {
            scheduler.cancelRunning()
            await scheduler.drained()
        }
        scheduler.background.cancelAll()
        if !Task.isCancelled { await scheduler.background.idle() }
        configuration.memorySampler?.stop()
        for sampler in configuration.deviceSamplers { sampler.stop() }
    }

    /// Whether every slot came back within `grace`.
    private func drained(within grace: Duration) async -> Bool {
        if grace > .zero {
            let deadline = lifecycle.clock.now + grace
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await self.scheduler.drained() }
                group.addTask { try? await self.lifecycle.clock.sleep(until: deadline) }
                await group.next()
                group.cancelAll()
            }
        }
        return scheduler.inspect { $0.isDrained }
    }
}

#if ServiceLifecycle
    /// With the `ServiceLifecycle` trait, a queue is a `Service`: ``CallQueue/run()`` shuts it down on the
    /// group's graceful shutdown. Put it before the services that use it (the HTTP server), so that a graceful
    /// shutdown, which stops services in reverse order, stops the server first.
    extension CallQueue: Service {}
#endif
