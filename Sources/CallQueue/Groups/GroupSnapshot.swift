/// One concurrency group as it stands: its limit, the calls running in it (with their slots), and how many
/// wait. What a server's `GET /queue` answers. Encodes as JSON with `limit` left out when unlimited.
public struct GroupSnapshot: Sendable, Hashable, Codable {
    /// A running job: its task and the slot it holds.
    public struct RunningJob: Sendable, Hashable, Codable {
        public var taskID: TaskID
        public var slot: Int
    }

    /// The group.
    public var group: ConcurrencyGroupID
    /// How many calls may run at once; `nil`: unlimited.
    public var limit: Int?
    /// Calls running now, tracked jobs and untracked calls alike.
    public var runningCount: Int
    /// The tracked jobs among them, by slot.
    public var running: [RunningJob]
    /// Calls waiting in its line.
    public var waiting: Int
}

extension CallQueue {
    /// Every group in use (declared groups always, undeclared ones while they hold anything), sorted by name.
    public var groups: [GroupSnapshot] {
        scheduler.inspect { state in
            var snapshots: [ConcurrencyGroupID: GroupSnapshot] = [:]
            for id in configuration.groups.keys {
                snapshots[id] = GroupSnapshot(
                    group: id, limit: configuration.groups[id]?.limit.count, runningCount: 0, running: [], waiting: 0)
            }
            for (id, group) in state.groups {
                snapshots[id] = GroupSnapshot(
                    group: id, limit: group.limit, runningCount: group.running.count, running: [],
                    waiting: group.line.count)
            }
            for task in state.tasks.values {
                if case .running(let running) = task.phase {
                    snapshots[task.group]?.running.append(.init(taskID: task.id, slot: running.slot))
                }
            }
            return snapshots.values.map { snapshot in
                var snapshot = snapshot
                snapshot.running.sort { $0.slot < $1.slot }
                return snapshot
            }.sorted { $0.group.name < $1.group.name }
        }
    }
}
