#if Logging
    import InMemoryLogging
    import Logging
    import XCTest

    @testable import CallQueue

    final class LoggingObserverTests: XCTestCase {
        struct Broken: Error, CustomStringConvertible {
            var description: String { "out of memory" }
        }

        func testEventsGoToTheGivenLoggerWithMetadata() async throws {
            let handler = InMemoryLogHandler()
            var logger = Logger(label: "test") { _ in handler }
            logger.logLevel = .debug
            let queue = try CallQueue(configuration: .init(observer: LoggingCallQueueObserver(logger: logger)))
            try await queue.runGPUCall(id: "task(ok)", group: "gpu") { _ in }
            let failing = wrapGPUCall(queue, group: "gpu") { (id: String) -> Int in throw Broken() }
            _ = await failing("task(bad)")

            let entries = handler.entries
            let messages = entries.map { "\($0.level) \($0.message) \($0.metadata["task"].map { "\($0)" } ?? "-")" }
            XCTAssertEqual(
                messages,
                [
                    "debug task queued task(ok)", "info task started task(ok)", "info task succeeded task(ok)",
                    "debug task queued task(bad)", "info task started task(bad)", "warning task failed task(bad)",
                    "error Error completing request task(bad)",
                ]
            )
            let failure = try XCTUnwrap(entries.last)
            XCTAssertEqual(failure.metadata["error_type"], "Broken")
            XCTAssertEqual(failure.metadata["error"], "out of memory")
            XCTAssertEqual(failure.metadata["arguments"], #"Arguments: ("task(bad)")"#)
            XCTAssertEqual(entries[2].metadata["group"], "gpu")
            XCTAssertNotNil(entries[2].metadata["ran_s"])
        }
    }
#endif
