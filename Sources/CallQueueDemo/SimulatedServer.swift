import CallQueue

/// A simulated image-generation server: a "gpu" group with one slot per GPU and an unlimited "cpu" group for
/// upscaling, served through one `CallQueue`.
struct SimulatedServer {
    struct GenerationFailed: Error, CustomStringConvertible {
        var description: String { "CUDA out of memory (simulated)" }
    }

    struct Request: Sendable {
        var id: TaskID
        var group: ConcurrencyGroupID
        var steps: Int
        var stepDuration: Duration
        var fails: Bool
        var cancelAfter: Duration?
    }

    let queue: CallQueue

    /// Runs one client's request: progress reported step by step, failing when the request says so.
    func handle(_ request: Request) async -> CallResponse<String> {
        let generate = wrapGPUCall(queue, group: request.group, fallback: .value("")) {
            (id: String, steps: Int) -> String in
            let context = CallContext.current!
            for step in 1...steps {
                try await Task.sleep(for: request.stepDuration)
                if request.fails && step == steps / 2 { throw GenerationFailed() }
                context.report(completed: step, of: steps, step: "step \(step)/\(steps)")
            }
            return "image \(id) on \(request.group) slot \(context.slot)"
        }
        return await generate(request.id.rawValue, request.steps)
    }
}

/// A small deterministic generator (SplitMix64), so that runs with the same seed are alike.
struct SeededRandom: RandomNumberGenerator {
    var state: UInt64

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var value = state
        value = (value ^ (value >> 30)) &* 0xBF58_476D_1CE4_E5B9
        value = (value ^ (value >> 27)) &* 0x94D0_49BB_1331_11EB
        return value ^ (value >> 31)
    }
}
