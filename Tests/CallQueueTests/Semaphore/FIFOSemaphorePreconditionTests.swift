import Foundation
import XCTest

@testable import CallQueue

/// Programming errors stop the process with a clear message. Each test runs itself again in a child
/// process with `CALLQUEUE_CRASH_SCENARIO` set; the child does the forbidden thing, the parent checks
/// that it died and what it printed.
final class FIFOSemaphorePreconditionTests: XCTestCase {
    private static let scenarioVariable = "CALLQUEUE_CRASH_SCENARIO"

    private func expectCrash(
        _ scenario: String,
        test: String,
        message: String,
        _ forbidden: () async throws -> Void,
        file: StaticString = #filePath,
        line: UInt = #line
    ) async throws {
        if ProcessInfo.processInfo.environment[Self.scenarioVariable] == scenario {
            try await forbidden()
            XCTFail("the forbidden call returned")
            exit(0)
        }
        #if os(Linux)
            let child = Process()
            child.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
            child.arguments = ["CallQueueTests.FIFOSemaphorePreconditionTests/\(test)"]
            // The runtime's backtracer and ThreadSanitizer's signal handler deadlock when both handle the trap.
            child.environment = ProcessInfo.processInfo.environment.merging([
                Self.scenarioVariable: scenario, "SWIFT_BACKTRACE": "enable=no",
            ]) { $1 }
            let errors = Pipe()
            child.standardError = errors
            child.standardOutput = FileHandle.nullDevice
            try child.run()
            let printed = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            child.waitUntilExit()
            XCTAssertEqual(child.terminationReason, .uncaughtSignal, "the child should trap", file: file, line: line)
            XCTAssertTrue(printed.contains(message), "child printed: \(printed)", file: file, line: line)
        #else
            throw XCTSkip("runs the test binary again as a child process, which is set up for Linux only")
        #endif
    }

    func testReleasingMoreThanIsHeldStops() async throws {
        try await expectCrash(
            "overRelease",
            test: "testReleasingMoreThanIsHeldStops",
            message: "releasing more permits than are held (1 of 2 held)"
        ) {
            let semaphore = FIFOSemaphore(permits: 2)
            try await semaphore.acquire()
            semaphore.release(weight: 2)
        }
    }

    func testReleasingWithNothingHeldStops() async throws {
        try await expectCrash(
            "releaseNothingHeld",
            test: "testReleasingWithNothingHeldStops",
            message: "releasing more permits than are held (0 of 1 held)"
        ) {
            let semaphore = FIFOSemaphore(permits: 1)
            semaphore.release()
        }
    }

    func testZeroPermitsStops() async throws {
        try await expectCrash(
            "zeroPermits",
            test: "testZeroPermitsStops",
            message: "FIFOSemaphore(permits: 0): permits must be between 1 and"
        ) {
            _ = FIFOSemaphore(permits: 0)
        }
    }

    func testReleaseWithInvalidWeightStops() async throws {
        try await expectCrash(
            "releaseWeightZero",
            test: "testReleaseWithInvalidWeightStops",
            message: "release(weight: 0): weight must be between 1 and 1"
        ) {
            FIFOSemaphore(permits: 1).release(weight: 0)
        }
    }
}
