/// A group's typical run time: the median of its recent runs, so that one outlier moves it at most one
/// place and is forgotten after `window` more runs. Before any run it answers the configured prior, so an
/// ETA is never missing.
struct RunTimeEstimator: Sendable {
    /// The last `window` runs in the order they came (a ring from ``next``), and the same runs sorted.
    private var recent: [Duration] = []
    private var sorted: [Duration] = []
    private var next = 0
    private let window: Int
    /// The median of the recent runs, or the prior; computed when a run is recorded, because it is read on
    /// every status query and for every subscriber when a queue moves.
    private(set) var estimate: Duration

    init(prior: Duration, window: Int = 16) {
        self.window = max(1, window)
        estimate = prior
    }

    /// Records a run: the oldest leaves the sorted runs and the new one goes in its place, with no sort and
    /// no allocation once the window is full.
    mutating func record(_ runTime: Duration) {
        if recent.count < window {
            recent.append(runTime)
        } else {
            let oldest = recent[next]
            recent[next] = runTime
            sorted.remove(at: Self.insertionIndex(of: oldest, in: sorted) - 1)
        }
        next = (next + 1) % window
        sorted.insert(runTime, at: Self.insertionIndex(of: runTime, in: sorted))
        let middle = sorted.count / 2
        estimate = sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
    }

    /// The index after the last element `<= value`.
    private static func insertionIndex(of value: Duration, in sorted: [Duration]) -> Int {
        var low = 0
        var high = sorted.count
        while low < high {
            let middle = (low + high) / 2
            if sorted[middle] <= value { low = middle + 1 } else { high = middle }
        }
        return low
    }
}
