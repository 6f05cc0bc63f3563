/// A group's typical run time: the median of its recent runs, so that one outlier moves it at most one
/// place and is forgotten after `window` more runs. Before any run it answers the configured prior, so an
/// ETA is never missing.
struct RunTimeEstimator: Sendable {
    private var recent: [Duration] = []
    private var next = 0
    private let window: Int
    private let prior: Duration

    init(prior: Duration, window: Int = 16) {
        self.prior = prior
        self.window = max(1, window)
    }

    mutating func record(_ runTime: Duration) {
        if recent.count < window {
            recent.append(runTime)
        } else {
            recent[next] = runTime
        }
        next = (next + 1) % window
    }

    var estimate: Duration {
        guard !recent.isEmpty else { return prior }
        let sorted = recent.sorted()
        let middle = sorted.count / 2
        if sorted.count % 2 == 1 { return sorted[middle] }
        return (sorted[middle - 1] + sorted[middle]) / 2
    }
}
