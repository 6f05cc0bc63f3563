import CallQueue
import Synchronization

/// A job's newest preview: its latest partial output, kept by the queue while the job runs and in its history
/// after it finished. Readers of the job's events hear of each new one.
public struct Preview: PartialOutput, Codable {
    public var step: Int
    public var png: [UInt8]

    public var outputByteCount: Int { png.count + 8 }
}

/// A request's JSON body, checked before anything is registered.
protocol CheckedRequest: Decodable {
    associatedtype Checked
    /// A good body, for the 400 that answers one that is not JSON of this shape.
    static var example: String { get }
    /// The request with defaults filled in, or a message saying what is wrong, under the server's options.
    func validated(under options: ServerOptions) throws(BadRequest) -> Checked
}

/// What a client asks for in `POST /jobs`.
public struct JobRequest: Codable, Sendable, CheckedRequest {
    public var prompt: String
    public var steps: Int?
    public var seed: UInt64?
    /// Milliseconds per step for this job (`"step_ms"`); the server's `--step-ms` when absent (the load test
    /// sets it).
    public var stepMilliseconds: Int?

    enum CodingKeys: String, CodingKey {
        case prompt, steps, seed
        case stepMilliseconds = "step_ms"
    }

    static let example = #"{"prompt": "a red fox", "steps": 20, "seed": 1}"#
    public static let maxPromptLength = 1_000
    public static let stepRange = 1...150
    public static let stepMillisecondsRange = 0...60_000

    /// A prompt without its surrounding spaces, or a message saying what is wrong: the jobs' and the chat
    /// calls' rule.
    static func checked(prompt: String) throws(BadRequest) -> String {
        let prompt = prompt.trimmingCharacters()
        guard !prompt.isEmpty else { throw BadRequest("'prompt' must not be empty") }
        guard prompt.count <= maxPromptLength else {
            throw BadRequest("'prompt' is longer than \(maxPromptLength) characters")
        }
        return prompt
    }

    /// The request with defaults filled in, or a message saying what is wrong. A job's own step time is a test
    /// hook: without `--test-hooks` the server's `--step-ms` bounds what a job costs, not the client.
    func validated(
        under options: ServerOptions
    ) throws(BadRequest) -> (prompt: String, steps: Int, seed: UInt64, stepDuration: Duration?) {
        let prompt = try Self.checked(prompt: prompt)
        let steps = steps ?? 20
        guard Self.stepRange.contains(steps) else {
            throw BadRequest(
                "'steps' must be in \(Self.stepRange.lowerBound)...\(Self.stepRange.upperBound), not \(steps)")
        }
        if stepMilliseconds != nil, !options.testHooks {
            throw BadRequest("'step_ms' is a test hook: the server sets the step time (start it with --test-hooks)")
        }
        if let stepMilliseconds, !Self.stepMillisecondsRange.contains(stepMilliseconds) {
            throw BadRequest("'step_ms' must be in 0...60000, not \(stepMilliseconds)")
        }
        return (prompt, steps, seed ?? 0, stepMilliseconds.map { .milliseconds($0) })
    }
}

struct BadRequest: Error {
    var message: String
    init(_ message: String) { self.message = message }
}

extension String {
    func trimmingCharacters() -> String {
        String(drop { $0.isWhitespace }.reversed().drop { $0.isWhitespace }.reversed())
    }
}

/// The simulated model: `steps` steps of `stepDuration`, progress per step, a preview per step emitted through
/// the queue (the call's latest partial output), cancellation honoured between steps, and a PNG at the end. It counts the bodies running at once, so tests can check
/// the limit from inside.
public final class SimulatedGPU: Sendable {
    public static let imageSize = 256
    public static let previewSize = 64

    let stepDuration: Duration
    private let bodies = Mutex<(running: Int, most: Int, spans: [Span])>((0, 0, []))
    private let origin = ContinuousClock.now
    /// Rendered pictures by (prompt, seed, size, step, steps): the same request draws the same picture, and
    /// the load test's thousands of alike jobs should cost sleep, not drawing.
    private let rendered = Mutex<[String: [UInt8]]>([:])

    func picture(_ painter: Painter, size: Int, step: Int, of steps: Int) -> [UInt8] {
        let key = "\(painter.seed)/\(size)/\(step)/\(steps)/\(painter.prompt)"
        if let png = rendered.withLock({ $0[key] }) { return png }
        let png = PNG.encode(width: size, height: size, rgb: painter.render(size: size, step: step, of: steps))
        rendered.withLock { cache in
            if cache.count >= 256 { cache.removeAll(keepingCapacity: true) }
            cache[key] = png
        }
        return png
    }

    /// When one body ran, in seconds since the server started.
    public struct Span: Codable, Sendable {
        public var start: Double
        public var end: Double
    }

    public init(stepDuration: Duration) {
        self.stepDuration = stepDuration
    }

    /// The simulated device's memory, as a `DeviceMonitor` reads it: 1 GiB of weights, and 3 GiB more for each
    /// running job, of 24 GiB. The queue's memory sampler reads it for each job's peak.
    public var memoryMonitor: ClosureDeviceMonitor {
        ClosureDeviceMonitor(device: DeviceIdentity(kind: "simulated", index: 0, name: "Simulated GPU")) { [self] in
            let gib: UInt64 = 1 << 30
            let used = gib + 3 * gib * UInt64(bodies.withLock { $0.running })
            return DeviceMemory(total: 24 * gib, free: 24 * gib - used, used: used, processUsed: used)
        }
    }

    /// The most bodies that ever ran at once.
    public var mostRunningAtOnce: Int { bodies.withLock { $0.most } }

    /// The most bodies at once and the last 5,000 bodies' spans, for the load test's gap measurement.
    public var stats: (most: Int, spans: [Span]) { bodies.withLock { ($0.most, $0.spans) } }

    /// Forgets the spans and restarts the count of the most running at once.
    public func resetStats() {
        bodies.withLock { state in
            state.most = state.running
            state.spans = []
        }
    }

    /// While set, every running job waits before its next step (`POST /debug/hold`): tests watch places and
    /// cancel without racing the simulated GPU.
    private let holding = Mutex(false)

    /// Holds or releases every running job between steps.
    public func hold(_ on: Bool) {
        holding.withLock { $0 = on }
    }

    /// Returns once the jobs are not held (`POST /debug/release`); throws when the call is cancelled.
    func waitWhileHeld() async throws {
        while holding.withLock({ $0 }) { try await Task.sleep(for: .milliseconds(10)) }
    }

    /// The job's body: runs in a slot of the "gpu" group.
    func generate(
        prompt: String, steps: Int, seed: UInt64, stepDuration: Duration? = nil, context: CallContext
    ) async throws -> [UInt8] {
        let stepDuration = stepDuration ?? self.stepDuration
        let start = (ContinuousClock.now - origin).seconds
        bodies.withLock { state in
            state.running += 1
            state.most = max(state.most, state.running)
        }
        defer {
            let end = (ContinuousClock.now - origin).seconds
            bodies.withLock { state in
                state.running -= 1
                state.spans.append(Span(start: start, end: end))
                if state.spans.count > 5_000 { state.spans.removeFirst(state.spans.count - 5_000) }
            }
        }
        let painter = Painter(prompt: prompt, seed: seed)
        for step in 1...steps {
            try Task.checkCancellation()
            try await waitWhileHeld()
            if stepDuration > .zero { try await Task.sleep(for: stepDuration) }
            let preview = picture(painter, size: Self.previewSize, step: step, of: steps)
            context.emitLatest(Preview(step: step, png: preview))
            context.report(completed: step, of: steps, step: "step \(step) of \(steps)")
        }
        return picture(painter, size: Self.imageSize, step: steps, of: steps)
    }

    /// "Describe image": a cheap call for the unlimited "cpu" group.
    static func describe(_ png: [UInt8]) -> String {
        "a \(imageSize)×\(imageSize) PNG of \(png.count) bytes"
    }
}

extension Duration {
    var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
