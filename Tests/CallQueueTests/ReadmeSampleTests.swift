import CallQueue
import XCTest

// The README's sample, kept word for word so that a change that breaks it breaks the build.
let gpu = FIFOSemaphore(permits: 1)  // one call on the GPU at a time

func generate(_ prompt: String) async throws -> String {
    try await gpu.withPermit(deadline: .now + .seconds(30)) {
        // Runs alone on the GPU, after everyone who queued before this call.
        "image for \(prompt)"
    }
}

let calls = try! CallQueue(configuration: .init(groups: ["gpu": .init(limit: 2, maxQueueSize: 100)]))
// Add `memorySampler: MemorySampler(monitor: DeviceMonitorSelection.automatic().monitor)` to the
// configuration and every job's stats carry its GPU memory peaks.

func txt2img(_ prompt: String, taskID: TaskID) async throws -> String {
    try await calls.runGPUCall(id: taskID, group: "gpu") { context in
        for step in 1...20 {
            // ... one denoising step on GPU number `context.slot` ...
            context.report(completed: step, of: 20)
        }
        return "image for \(prompt) from GPU \(context.slot)"
    }
}

// Or answer a request at once with the job's id; the job runs in a task the queue owns.
func submitTxt2img(_ prompt: String) throws -> TaskID {
    try calls.submit(group: "gpu") { context in "image for \(prompt) from GPU \(context.slot)" }.id
}

// From another request: where is it, and stop it.
func progress(of taskID: TaskID) throws -> TaskStatus { try calls.status(of: taskID) }
func stop(_ taskID: TaskID) throws { try calls.cancel(taskID) }

final class ReadmeSampleTests: XCTestCase {
    func testReadmeSampleRuns() async throws {
        let result = try await generate("a lighthouse")
        XCTAssertEqual(result, "image for a lighthouse")
        XCTAssertEqual(gpu.snapshot.available, 1)
    }

    func testReadmeCallQueueSampleRuns() async throws {
        let image = try await txt2img("a lighthouse", taskID: "task(readme)")
        XCTAssertEqual(image, "image for a lighthouse from GPU 0")
        XCTAssertTrue(try progress(of: "task(readme)").isFinished)
        XCTAssertFalse(try calls.cancel("task(readme)"), "already finished")
        XCTAssertNoThrow(try stop("task(readme)"))
    }
}
