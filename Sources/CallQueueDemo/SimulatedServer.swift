import CallQueue
import Foundation

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
    /// With `--postgres`: records each GPU call's grant.
    var cluster: DemoCluster? = nil
    /// With `--batch N` above 1: GPU requests run together, up to N per batch in one slot.
    let batcher: Batcher<Request, String>?

    init(queue: CallQueue, batchSize: Int, cluster: DemoCluster? = nil) {
        self.queue = queue
        self.cluster = cluster
        guard batchSize > 1 else {
            batcher = nil
            return
        }
        // A batch runs as long as its longest member, a little longer per member than one request alone;
        // members that fail fail alone.
        batcher = queue.makeBatcher(
            group: "gpu", maxBatchSize: batchSize, maxDelay: .milliseconds(50),
            perMember: {
                (requests: [Request], context: BatchContext) -> [Result<String, any Error>] in
                let steps = requests.map(\.steps).max() ?? 1
                let stepDuration = requests.map(\.stepDuration).max() ?? .milliseconds(50)
                for step in 1...steps {
                    try await Task.sleep(for: stepDuration + .milliseconds(5) * requests.count)
                    context.report(
                        completed: step, of: steps, step: "step \(step)/\(steps), batch of \(requests.count)")
                }
                return requests.map { request in
                    request.fails
                        ? .failure(GenerationFailed())
                        : .success("image \(request.id) on gpu slot \(context.slot), batch of \(requests.count)")
                }
            })
    }

    /// Runs one client's request: progress reported step by step, failing when the request says so.
    func handle(_ request: Request) async -> CallResponse<String> {
        if let batcher, request.group == "gpu" {
            do {
                return try await batcher.submit(request, id: request.id).response
            } catch {
                return CallResponse(notRun: error, taskID: request.id, outputs: "")
            }
        }
        let generate = wrapGPUCall(queue, group: request.group, fallback: .value("")) {
            (id: String, steps: Int) -> String in
            let context = CallContext.current!
            let started = Date()
            defer { cluster?.record(context, from: started) }
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
