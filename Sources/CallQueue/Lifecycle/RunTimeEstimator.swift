/// A group's typical run time: the median of its recent runs, so that one outlier moves it at most one
/// place and is forgotten after `window` more runs. Before any run it answers the configured prior, so an
/// ETA is never missing.
struct RunTimeEstimator: Sendable {
    private var recent: [Duration] = []
    private var next = 0
    private let window: Int
    /// The median of ``recent``, or the prior; computed when a run is recorded, because it is read on every
    /// status query and for every subscriber when a queue moves.
    private(set) var estimate: Duration

    init(prior: Duration, window: Int = 16) {
        self.window = max(1, window)
        estimate = prior
    }

    mutating func record(_ runTime: Duration) {
        if recent.count < window {
            recent.append(runTime)
        } else {
            recent[next] = runTime
        }
        next = (next + 1) % window
        let sorted = recent.sorted()
        let middle = sorted.count / 2
        estimate = sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
    }
}
