/// What one call cost: time queued and time running, kept apart, and the memory peaks of its run.
///
/// Renders as AUTOMATIC1111's "Time taken" HTML block (with its VRAM line when memory was sampled), as
/// one plain line, and as `Codable`. Unlike AUTOMATIC1111, "Time taken" is the running time alone; the
/// wait is reported beside it, not folded in.
public struct PerfStats: Sendable, Hashable {
    /// Time from the call being queued to its start.
    public var queued: Duration
    /// Time from its start to its end.
    public var running: Duration
    /// The memory peaks of the call's run, when a ``MemorySampler`` watched it.
    public var memory: MemoryStats?
    /// Why ``memory`` is missing though a sampler was set (polling off, the device failing to read).
    public var memoryUnavailableReason: String?
    /// For a member of a batch: how many members the batch had (``running`` is then the batch's run time).
    public var batchSize: Int?

    public init(
        queued: Duration,
        running: Duration,
        memory: MemoryStats? = nil,
        memoryUnavailableReason: String? = nil
    ) {
        self.queued = queued
        self.running = running
        self.memory = memory
        self.memoryUnavailableReason = memoryUnavailableReason
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
            + Self.timeText(running) + "</span></p>" + (memory?.html ?? "") + "</div>"
    }

    /// One line for logs: `ran 4.3 sec., queued 1.2 sec.; A 2.41 GB, R 3.18 GB, Sys 5.8/6 GB (96.5%)`.
    public var plainText: String {
        let batch = batchSize.map { " in a batch of \($0)" } ?? ""
        var text = "ran \(Self.timeText(running))\(batch), queued \(Self.timeText(queued))"
        if let memory {
            text += "; \(memory.plainText)"
        } else if let memoryUnavailableReason {
            text += "; memory unavailable: \(memoryUnavailableReason)"
        }
        return text
    }
}

/// The wire format: durations in seconds (numbers), memory as ``MemoryStats`` encodes it, absent values left
/// out: `{"queued":0.25,"running":4.5,"memory":{…}}`.
extension PerfStats: Codable {
    private enum CodingKeys: String, CodingKey {
        case queued, running, memory, memoryUnavailableReason, batchSize
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            queued: .seconds(try container.decode(Double.self, forKey: .queued)),
            running: .seconds(try container.decode(Double.self, forKey: .running)),
            memory: try container.decodeIfPresent(MemoryStats.self, forKey: .memory),
            memoryUnavailableReason: try container.decodeIfPresent(String.self, forKey: .memoryUnavailableReason)
        )
        batchSize = try container.decodeIfPresent(Int.self, forKey: .batchSize)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(queued.seconds, forKey: .queued)
        try container.encode(running.seconds, forKey: .running)
        try container.encodeIfPresent(memory, forKey: .memory)
        try container.encodeIfPresent(memoryUnavailableReason, forKey: .memoryUnavailableReason)
        try container.encodeIfPresent(batchSize, forKey: .batchSize)
    }
}
