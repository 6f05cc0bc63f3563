/// What one call cost: time queued and time running, kept apart.
///
/// Renders as AUTOMATIC1111's "Time taken" HTML block, as one plain line, and as `Codable`. Unlike
/// AUTOMATIC1111, "Time taken" is the running time alone; the wait is reported beside it, not folded in.
public struct PerfStats: Sendable, Hashable, Codable {
    /// Time from the call being queued to its start.
    public var queued: Duration
    /// Time from its start to its end.
    public var running: Duration

    public init(queued: Duration, running: Duration) {
        self.queued = queued
        self.running = running
    }

    /// AUTOMATIC1111's time text: `"S.S sec."`, with `"N min. "` in front from one minute on.
    /// (As there, 59.96 s reads "60.0 sec.".)
    public static func timeText(_ duration: Duration) -> String {
        let total = max(0, duration.seconds)
        let minutes = Int(total / 60)
        let seconds = total.truncatingRemainder(dividingBy: 60)
        let text = "\(cFormat("%.1f", seconds)) sec."
        return minutes > 0 ? "\(minutes) min. \(text)" : text
    }

    /// AUTOMATIC1111's performance block, appended to a response's last HTML output.
    public var html: String {
        "<div class='performance'><p class='time'>Time taken: <wbr><span class='measurement'>"
            + Self.timeText(running) + "</span></p></div>"
    }

    /// One line for logs: `ran 4.3 sec., queued 1.2 sec.`
    public var plainText: String {
        "ran \(Self.timeText(running)), queued \(Self.timeText(queued))"
    }
}
