import CallQueue
import Synchronization

/// What a client asks for in `POST /jobs`.
public struct JobRequest: Codable, Sendable {
    public var prompt: String
    public var steps: Int?
    public var seed: UInt64?

    public static let maxPromptLength = 1_000
    public static let stepRange = 1...150

    /// The request with defaults filled in, or a message saying what is wrong.
    func validated() throws(BadRequest) -> (prompt: String, steps: Int, seed: UInt64) {
        let prompt = prompt.trimmingCharacters()
        guard !prompt.isEmpty else { throw BadRequest("'prompt' must not be empty") }
        guard prompt.count <= Self.maxPromptLength else {
            throw BadRequest("'prompt' is longer than \(Self.maxPromptLength) characters")
        }
        let steps = steps ?? 20
        guard Self.stepRange.contains(steps) else {
            throw BadRequest(
                "'steps' must be in \(Self.stepRange.lowerBound)...\(Self.stepRange.upperBound), not \(steps)")
        }
        return (prompt, steps, seed ?? 0)
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

/// The simulated model: `steps` steps of `stepDuration`, progress per step, a preview per step, cancellation
/// honoured between steps, and a PNG at the end. It counts the bodies running at once, so tests can check
/// the limit from inside.
public final class SimulatedGPU: Sendable {
    public static let imageSize = 256
    public static let previewSize = 64

    let stepDuration: Duration
    private let previews = Mutex<(images: [TaskID: [UInt8]], finished: [TaskID])>(([:], []))
    private let keptPreviews: Int
    private let bodies = Mutex<(running: Int, most: Int)>((0, 0))

    public init(stepDuration: Duration, keptPreviews: Int = 256) {
        self.stepDuration = stepDuration
        self.keptPreviews = keptPreviews
    }

    /// The most bodies that ever ran at once.
    public var mostRunningAtOnce: Int { bodies.withLock { $0.most } }

    /// The newest preview of a job, while it runs or after it finished (until forgotten).
    public func preview(of id: TaskID) -> [UInt8]? {
        previews.withLock { $0.images[id] }
    }

    /// A job ended: its last preview stays for the last `keptPreviews` jobs.
    func jobEnded(_ id: TaskID) {
        previews.withLock { state in
            state.finished.append(id)
            if state.finished.count > keptPreviews {
                state.images[state.finished.removeFirst()] = nil
            }
        }
    }

    /// The job's body: runs in a slot of the "gpu" group.
    func generate(prompt: String, steps: Int, seed: UInt64, context: CallContext) async throws -> [UInt8] {
        bodies.withLock { state in
            state.running += 1
            state.most = max(state.most, state.running)
        }
        defer { bodies.withLock { $0.running -= 1 } }
        let painter = Painter(prompt: prompt, seed: seed)
        for step in 1...steps {
            try Task.checkCancellation()
            if stepDuration > .zero { try await Task.sleep(for: stepDuration) }
            let preview = PNG.encode(
                width: Self.previewSize, height: Self.previewSize,
                rgb: painter.render(size: Self.previewSize, step: step, of: steps))
            previews.withLock { $0.images[context.taskID] = preview }
            context.report(completed: step, of: steps, step: "step \(step) of \(steps)")
        }
        return PNG.encode(
            width: Self.imageSize, height: Self.imageSize,
            rgb: painter.render(size: Self.imageSize, step: steps, of: steps))
    }

    /// "Describe image": a cheap call for the unlimited "cpu" group.
    static func describe(_ png: [UInt8]) -> String {
        "a \(imageSize)×\(imageSize) PNG of \(png.count) bytes"
    }
}
