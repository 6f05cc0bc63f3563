import CallQueue
import Foundation

/// Redraws the queue's live tasks a few times a second: running calls with their slot and a progress bar,
/// waiting calls with their position and ETA.
struct LiveView {
    let queue: CallQueue
    let start: ContinuousClock.Instant

    func run() async {
        while !Task.isCancelled {
            draw()
            try? await Task.sleep(for: .milliseconds(150))
        }
        draw()
    }

    private func draw() {
        let statuses = queue.liveTasks
        var lines = ["\u{1B}[H\u{1B}[2J" + "swift-call-queue demo, \(seconds(ContinuousClock.now - start)) s"]
        let running = statuses.compactMap { status in status.state.running.map { (status, $0) } }
            .sorted { ($0.0.group.name, $0.1.slot) < ($1.0.group.name, $1.1.slot) }
        let waiting = statuses.compactMap { status in status.state.queued.map { (status, $0) } }
            .sorted { ($0.0.group.name, $0.1.position) < ($1.0.group.name, $1.1.position) }
        lines.append("running (\(running.count)):")
        for (status, state) in running {
            let fraction = state.progress ?? 0
            let filled = Int((fraction * 20).rounded())
            let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: 20 - filled)
            lines.append(
                "  \(status.id)  \(status.group) slot \(state.slot)  [\(bar)] \(Int(fraction * 100))%  "
                    + "\(state.step ?? "")  eta \(seconds(state.eta)) s"
            )
        }
        lines.append("waiting (\(waiting.count)):")
        for (status, state) in waiting.prefix(12) {
            lines.append(
                "  \(status.id)  \(status.group) #\(state.position + 1) of \(state.queueSize)  "
                    + "start in ~\(seconds(state.estimatedWait)) s, done in ~\(seconds(state.eta)) s"
            )
        }
        if waiting.count > 12 { lines.append("  ... and \(waiting.count - 12) more") }
        print(lines.joined(separator: "\n"))
    }
}

func seconds(_ duration: Duration) -> String {
    String(format: "%.1f", duration.inSeconds)
}

/// Prints one line per task event when there is no live view (logs, CI, a pipe).
final class EventPrinter: CallQueueObserver {
    let enabled: Bool

    init(enabled: Bool) {
        self.enabled = enabled
    }

    func taskDidChange(_ status: TaskStatus) {
        guard enabled else { return }
        switch status.state {
        case .queued(let queued):
            print(
                "queued   \(status.id) \(status.group) #\(queued.position + 1) of \(queued.queueSize), eta \(seconds(queued.eta)) s"
            )
        case .running(let running):
            print("started  \(status.id) \(status.group) slot \(running.slot)")
        case .finished(let finished):
            let outcome: String
            switch finished.outcome {
            case .succeeded: outcome = "succeeded"
            case .failed(let message): outcome = "failed (\(message))"
            case .cancelled: outcome = "cancelled"
            }
            print("finished \(status.id) \(status.group) \(outcome) after \(seconds(finished.ranFor)) s")
        }
        // Each event reaches a file or a pipe when it happens: a log read while the demo runs (CI waits for a
        // call to start before it sends SIGTERM) sees it then.
        fflush(nil)
    }
}
