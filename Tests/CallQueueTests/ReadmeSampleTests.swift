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

final class ReadmeSampleTests: XCTestCase {
    func testReadmeSampleRuns() async throws {
        let result = try await generate("a lighthouse")
        XCTAssertEqual(result, "image for a lighthouse")
        XCTAssertEqual(gpu.snapshot.available, 1)
    }
}
