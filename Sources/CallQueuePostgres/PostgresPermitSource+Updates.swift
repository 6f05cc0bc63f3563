#if Postgres
    import CallQueue
    import Foundation
    import NIOConcurrencyHelpers

    // Updates of a task from any replica: every replica listens to the schema's channel, on which a group's line
    // announces each change (an enqueue, a grant, a release, a reap). A watched task's status is read again after
    // each announcement of its group, and at every heartbeat in case one was lost.

    extension PostgresPermitSource {
        struct Watcher {
            var id: TaskID
            var continuation: AsyncStream<TaskStatus>.Continuation
            /// Its group, once a status named it: announcements of other groups do not concern it.
            var group: String?
            /// The last status yielded, without its version.
            var last: TaskStatus?
            var version: UInt64 = 0
        }

        /// The statuses of a task in a cluster-wide group, whichever replica runs it: what
        /// ``status(of:)`` answers, each time it changes, in the same JSON form. A change of state is read as
        /// soon as the database announces its group's line moved; places at most once per
        /// ``Configuration/positionRefreshInterval``; a lost announcement is made up for at the next heartbeat.
        /// Versions only grow within one stream. The stream ends after the task's final status (kept for
        /// ``Configuration/finishedStatusRetention``), when the task leaves the database without one (it ran
        /// without a task id, or its replica was lost), or when the source stops. A task the database does not
        /// know yet is waited for.
        ///
        /// Serve it from a route of any replica, so a load balancer without sticky sessions can serve a client's
        /// event stream: the replica that runs the call keeps its own ``CallQueue/updates(of:)`` with progress and
        /// partial outputs, which stay on that replica.
        public func updates(of id: TaskID) -> AsyncStream<TaskStatus> {
            let (stream, continuation) = AsyncStream.makeStream(
                of: TaskStatus.self, bufferingPolicy: .bufferingNewest(8))
            let key = UUID()
            let stopped = state.withLockedValue { state -> Bool in
                if state.startFailure?.code == .closed { return true }
                state.watchers[key] = Watcher(id: id, continuation: continuation)
                return false
            }
            if stopped {
                continuation.finish()
                return stream
            }
            continuation.onTermination = { [weak self] _ in
                self?.state.withLockedValue { _ = $0.watchers.removeValue(forKey: key) }
            }
            wakeups.watch.yield()
            return stream
        }

        /// Reads the watched tasks again whenever a line moves, and at every heartbeat. A task whose next change
        /// is a change of state (it is unknown yet, runs, or is among the next to be granted) is read at each
        /// announcement of its group; the others at most once per ``Configuration/positionRefreshInterval``.
        func watchLoop() async {
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    while !Task.isCancelled {
                        try? await Task.sleep(for: self.configuration.heartbeat)
                        self.state.withLockedValue { $0.watchEverything = true }
                        self.wakeups.watch.yield()
                    }
                }
                var nextRoutine = ContinuousClock.now
                var routineScheduled = false
                for await _ in wakeups.watchStream {
                    if Task.isCancelled { break }
                    let now = ContinuousClock.now
                    let routine = now >= nextRoutine
                    if routine {
                        nextRoutine = now + configuration.positionRefreshInterval
                        routineScheduled = false
                    } else if !routineScheduled {
                        // The places that changed now are read when the interval is over.
                        routineScheduled = true
                        group.addTask { [at = nextRoutine] in
                            try? await Task.sleep(until: at, clock: .continuous)
                            self.wakeups.watch.yield()
                        }
                    }
                    await refreshWatchers(routine: routine)
                }
                group.cancelAll()
            }
            endWatchers()
        }

        func refreshWatchers(routine: Bool) async {
            let (watchers, groups, everything) = state.withLockedValue { state in
                defer {
                    if routine {
                        state.watchedGroups = []
                        state.watchEverything = false
                    }
                }
                return (state.watchers, state.watchedGroups, state.watchEverything)
            }
            for (key, watcher) in watchers {
                if !everything, let group = watcher.group, !groups.contains(group) { continue }
                if !routine {
                    let slots = watcher.group.flatMap { configuration.groups[ConcurrencyGroupID($0)] } ?? 1
                    let changesStateNext =
                        watcher.last == nil || watcher.last?.state.running != nil
                        || (watcher.last?.state.queued?.position ?? .max) < slots
                    guard changesStateNext else { continue }
                }
                guard let status = try? await status(of: watcher.id) else {
                    if watcher.last != nil {
                        // Gone without a final status: nothing more will come.
                        state.withLockedValue { _ = $0.watchers.removeValue(forKey: key) }
                        watcher.continuation.finish()
                    }
                    continue
                }
                var bare = status
                bare.version = 0
                let update = state.withLockedValue { state -> TaskStatus? in
                    guard var current = state.watchers[key], current.last != bare else { return nil }
                    current.last = bare
                    current.group = status.group.name
                    current.version += 1
                    state.watchers[key] = current
                    var update = status
                    update.version = current.version
                    return update
                }
                guard let update else { continue }
                watcher.continuation.yield(update)
                if update.state.finished != nil {
                    state.withLockedValue { _ = $0.watchers.removeValue(forKey: key) }
                    watcher.continuation.finish()
                }
            }
        }

        func endWatchers() {
            let watchers = state.withLockedValue { state in
                defer { state.watchers = [:] }
                return state.watchers
            }
            for watcher in watchers.values { watcher.continuation.finish() }
        }
    }
#endif
