import CallQueueTestSupport
import XCTest

@testable import CallQueue

final class WrapperTests: XCTestCase {
    struct RuntimeError: Error, CustomStringConvertible {
        var description: String
    }

    func testQueuedCallKeepsParametersAndRethrows() async throws {
        let queue = try CallQueue()
        let add = wrapQueuedCall(queue) { (a: Int, b: Int) in a + b }
        let total = try await add(2, 3)
        XCTAssertEqual(total, 5)
        let fail = wrapQueuedCall(queue) { (message: String) -> Int in throw RuntimeError(description: message) }
        do {
            _ = try await fail("boom")
            XCTFail("expected the error")
        } catch let error as RuntimeError {
            XCTAssertEqual(error.description, "boom")
        }
    }

    /// A `task(...)` first argument registers that id, and is still passed to the function, as in A1111.
    func testGPUCallRegistersTheTaskIdFromTheFirstArgument() async throws {
        let queue = try CallQueue()
        let txt2img = wrapGPUCall(queue, group: "gpu") { (id: String, prompt: String, steps: Int) -> String in
            XCTAssertEqual(CallContext.current?.taskID, TaskID(id))
            return "\(id):\(prompt):\(steps)"
        }
        let response = await txt2img("task(abc123)", "a lighthouse", 20)
        XCTAssertTrue(response.succeeded)
        XCTAssertEqual(response.outputs, "task(abc123):a lighthouse:20")
        XCTAssertEqual(response.taskID, "task(abc123)")
        XCTAssertEqual(try queue.status(of: "task(abc123)").group, "gpu")
        XCTAssertEqual(queue.result(of: "task(abc123)") as? String, "task(abc123):a lighthouse:20")
    }

    /// A failure never throws: the response holds the fallback, the error and the stats; the observer gets
    /// the error with the arguments.
    func testGPUCallFailureReturnsFallbackAndReports() async throws {
        let observer = RecordingObserver()
        let queue = try CallQueue(configuration: .init(observer: observer))
        let generate = wrapGPUCall(queue, fallback: .value(["", ""])) { (id: String, prompt: String) -> [String] in
            throw RuntimeError(description: "CUDA out of memory <tried to allocate 2 GiB>")
        }
        let response = await generate("task(oom)", "a cat")
        XCTAssertFalse(response.succeeded)
        XCTAssertEqual(response.outputs, ["", ""])
        XCTAssertEqual(response.failure?.type, "RuntimeError")
        XCTAssertEqual(
            response.errorHTML,
            "<div class='error'>RuntimeError: CUDA out of memory &lt;tried to allocate 2 GiB&gt;</div>"
        )
        XCTAssertEqual(
            try queue.status(of: "task(oom)").state.finished?.outcome,
            .failed(message: "RuntimeError: CUDA out of memory <tried to allocate 2 GiB>")
        )
        let report = try XCTUnwrap(observer.failures.elements.first)
        XCTAssertEqual(report.taskID, "task(oom)")
        XCTAssertEqual(report.errorType, "RuntimeError")
        XCTAssertEqual(report.arguments, #"Arguments: ("task(oom)", "a cat")"#)
    }

    func testFallbackFactoryIsCalledPerFailure() async throws {
        let queue = try CallQueue()
        let made = HolderCounter()
        let call = wrapCallNoJob(
            queue,
            fallback: .make {
                made.enter(); return 7
            }
        ) { () -> Int in
            throw RuntimeError(description: "no")
        }
        _ = await call()
        let second = await call()
        XCTAssertEqual(second.outputs, 7)
        XCTAssertEqual(made.current, 2)
    }

    func testRejectedGPUCallComesBackAsAResponse() async throws {
        let queue = try CallQueue(configuration: .init(groups: ["gpu": .init(limit: 1, maxQueueSize: 0)]))
        let gate = Gate()
        let holder = Task { try await queue.runGPUCall(id: "task(h)", group: "gpu") { _ in await gate.wait() } }
        await waitForStatus(queue, "task(h)") { $0.isRunning }
        let call = wrapGPUCall(queue, group: "gpu", fallback: .value(0)) { () -> Int in 1 }
        let response = await call()
        XCTAssertEqual(response.outputs, 0)
        XCTAssertEqual(response.failure?.type, "CallQueueError")
        XCTAssertEqual(response.failure?.code, "queueFull")
        gate.open()
        try await holder.value
    }

    func testCancelledGPUCallIsNotASuccess() async throws {
        let queue = try CallQueue()
        let call = wrapGPUCall(queue) { (id: String) -> Int in
            await waitUntil { Task.isCancelled }
            try Task.checkCancellation()
            return 1
        }
        let task = Task { await call("task(c)") }
        await waitForStatus(queue, "task(c)") { $0.isRunning }
        try queue.cancel("task(c)")
        let response = await task.value
        XCTAssertTrue(response.wasCancelled)
        XCTAssertFalse(response.succeeded)
        XCTAssertNil(response.outputs)
        XCTAssertEqual(response.plainText.prefix(22), "task(c) was cancelled:")
    }

    /// AUTOMATIC1111 tests the length after cutting, so its truncation note never shows; ours does.
    func testLongArgumentsAreCutWithANote() {
        let long = String(repeating: "x", count: 200_000)
        let text = CallFailureReport.argumentText([long])
        let full = "Arguments: (\"" + long + "\")"
        XCTAssertEqual(
            text,
            String(full.prefix(131_072)) + " (Argument list truncated at 131072/\(full.count) characters)"
        )
        XCTAssertEqual(CallFailureReport.argumentText([1, "a"]), #"Arguments: (1, "a")"#)
    }

    // MARK: Renderings, byte for byte against A1111's format

    func testTimeTextMatchesA1111() {
        XCTAssertEqual(PerfStats.timeText(.milliseconds(4_300)), "4.3 sec.")
        XCTAssertEqual(PerfStats.timeText(.milliseconds(75_200)), "1 min. 15.2 sec.")
        XCTAssertEqual(PerfStats.timeText(.milliseconds(59_960)), "60.0 sec.")
        XCTAssertEqual(PerfStats.timeText(.milliseconds(119_970)), "1 min. 60.0 sec.")
        XCTAssertEqual(PerfStats.timeText(.zero), "0.0 sec.")
        XCTAssertEqual(PerfStats.timeText(.seconds(3_725)), "62 min. 5.0 sec.")
    }

    func testHTMLMatchesA1111() {
        let stats = PerfStats(queued: .seconds(1), running: .milliseconds(4_300))
        XCTAssertEqual(
            stats.html,
            "<div class='performance'><p class='time'>Time taken: <wbr><span class='measurement'>4.3 sec.</span></p></div>"
        )
        var response = CallResponse<Int>(
            taskID: "task(a)",
            outputs: nil,
            failure: .init(type: "RuntimeError", message: #"bad "quote" & 'apostrophe'"#),
            wasCancelled: false,
            stats: stats
        )
        XCTAssertEqual(
            response.html,
            "<div class='error'>RuntimeError: bad &quot;quote&quot; &amp; &#x27;apostrophe&#x27;</div>"
                + "<div class='performance'><p class='time'>Time taken: <wbr><span class='measurement'>4.3 sec.</span></p></div>"
        )
        XCTAssertEqual(
            response.plainText,
            #"task(a) failed (RuntimeError: bad "quote" & 'apostrophe'): ran 4.3 sec., queued 1.0 sec."#
        )
        response.failure = nil
        response.outputs = 3
        XCTAssertEqual(response.plainText, "task(a) succeeded: ran 4.3 sec., queued 1.0 sec.")
    }

    func testResponseIsCodable() throws {
        let response = CallResponse<[String]>(
            taskID: "task(a)",
            outputs: ["x"],
            failure: nil,
            wasCancelled: false,
            stats: PerfStats(queued: .seconds(1), running: .seconds(2))
        )
        let decoded = try JSONDecoder().decode(CallResponse<[String]>.self, from: JSONEncoder().encode(response))
        XCTAssertEqual(decoded, response)
    }

    func testRunCallNoJobReportsAndRethrows() async throws {
        let observer = RecordingObserver()
        let queue = try CallQueue(configuration: .init(observer: observer))
        do {
            try await queue.runCallNoJob { throw RuntimeError(description: "disk full") }
            XCTFail("expected the error")
        } catch is RuntimeError {}
        XCTAssertEqual(observer.failures.elements.map(\.message), ["disk full"])
        XCTAssertTrue(queue.liveTasks.isEmpty)
    }
}
