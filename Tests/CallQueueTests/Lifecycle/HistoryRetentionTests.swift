import CallQueueTestSupport
import Foundation
import XCTest

@testable import CallQueue

/// The histories of finished tasks kept by count, by age and by bytes: the history against a plain model,
/// and the queue's statuses, results and previews forgotten by time.
final class HistoryRetentionTests: XCTestCase {
    /// The rules restated: every record in order; after each one, the oldest go while there are more than the
    /// capacity, while the oldest is past its age, or while the bytes are over the budget.
    struct Model {
        struct Record {
            var id: TaskID
            var value: Int
            var at: ContinuousClock.Instant
            var bytes: Int
        }

        let capacity: Int
        let maxAge: Duration?
        let maxBytes: Int?
        var records: [Record] = []

        func expired(_ record: Record, at now: ContinuousClock.Instant) -> Bool {
            maxAge.map { now - record.at > $0 } ?? false
        }

        mutating func record(_ value: Int, for id: TaskID, at now: ContinuousClock.Instant, bytes: Int) {
            guard capacity > 0 else { return }
            records.removeAll { $0.id == id }
            if let maxBytes, bytes > maxBytes { return }  // never kept, and nothing else goes for it
            records.append(Record(id: id, value: value, at: now, bytes: bytes))
            while let oldest = records.first,
                records.count > capacity || expired(oldest, at: now)
                    || (maxBytes.map { records.reduce(0) { $0 + $1.bytes } > $0 } ?? false)
            {
                records.removeFirst()
            }
        }

        func value(of id: TaskID, at now: ContinuousClock.Instant) -> Int? {
            guard let record = records.first(where: { $0.id == id }), !expired(record, at: now) else { return nil }
            return record.value
        }
    }

    static let steps = ProcessInfo.processInfo.environment["CALLQUEUE_MODEL_STEPS"].flatMap(Int.init) ?? 600

    func testTheHistoryMatchesTheModel() {
        let shapes: [(capacity: Int, maxAge: Duration?, maxBytes: Int?)] = [
            (4, nil, nil), (8, .seconds(10), nil), (16, nil, 300), (6, .seconds(5), 200), (1, .seconds(3), 50),
            (0, .seconds(1), nil),
        ]
        for (index, shape) in shapes.enumerated() {
            var random = SeededRandom(seed: UInt64(index + 1) * 31_337)
            var history = TaskHistory<Int>(capacity: shape.capacity, maxAge: shape.maxAge, maxBytes: shape.maxBytes)
            var model = Model(capacity: shape.capacity, maxAge: shape.maxAge, maxBytes: shape.maxBytes)
            var now = ContinuousClock.now
            let ids = (0..<12).map { TaskID("task(h\($0))") }
            for step in 0..<Self.steps {
                let here = "shape \(index), step \(step)"
                now += .milliseconds(500 * Int.random(in: 0...3, using: &random))  // ages land on the bound exactly
                if Bool.random(using: &random) {
                    let id = ids.randomElement(using: &random)!
                    let bytes = Int.random(in: 0...(shape.maxBytes.map { $0 + 10 } ?? 120), using: &random)
                    history.record(step, for: id, at: now, bytes: bytes)
                    model.record(step, for: id, at: now, bytes: bytes)
                }
                for id in ids {
                    XCTAssertEqual(history[id, now], model.value(of: id, at: now), "\(here), \(id)")
                }
                XCTAssertEqual(history.totalBytes, model.records.reduce(0) { $0 + $1.bytes }, here)
                XCTAssertLessThanOrEqual(history.count, max(shape.capacity, 0), here)
            }
        }
    }

    /// A finished call is forgotten once it is older than `finishedTaskMaxAge`: its status, result and last
    /// preview together, however few calls finished since.
    func testFinishedCallsAreForgottenByAge() async throws {
        let clock = ManualClock()
        let queue = try CallQueue(
            configuration: .init(
                finishedTaskHistory: 1_000, resultHistory: 1_000, finishedTaskMaxAge: .seconds(600),
                clock: clock.lifecycleClock))
        _ = try await queue.runGPUCall(id: "task(old)") { context in
            _ = context.emitLatest("preview")
            return "image"
        }
        clock.advance(by: .seconds(599))
        XCTAssertEqual(try queue.status(of: "task(old)").state.finished?.outcome, .succeeded)
        XCTAssertEqual(queue.result(of: "task(old)") as? String, "image")
        XCTAssertEqual(queue.latestOutput(of: "task(old)", as: String.self), "preview")
        clock.advance(by: .seconds(2))
        XCTAssertThrowsError(try queue.status(of: "task(old)")) { error in
            XCTAssertEqual((error as? CallQueueError)?.code, .unknownTask)
        }
        XCTAssertNil(queue.result(of: "task(old)"))
        XCTAssertNil(queue.latestOutput(of: "task(old)", as: String.self))
        XCTAssertThrowsError(try queue.updates(of: "task(old)"))
        XCTAssertThrowsError(try queue.outputs(of: "task(old)", chunks: String.self))
        XCTAssertThrowsError(try queue.cancel("task(old)"))
    }

    /// Results are kept within a byte budget, counted by results that say their size; the oldest go first,
    /// and one larger than the whole budget is not kept.
    func testResultsAreKeptWithinAByteBudget() async throws {
        let queue = try CallQueue(configuration: .init(resultHistory: 100, resultHistoryBytes: 250))
        for index in 0..<3 {
            _ = try await queue.runGPUCall(id: TaskID("task(r\(index))")) { _ in [UInt8](repeating: 1, count: 100) }
        }
        XCTAssertNil(queue.result(of: "task(r0)"), "the oldest made room")
        XCTAssertNotNil(queue.result(of: "task(r1)"))
        XCTAssertNotNil(queue.result(of: "task(r2)"))
        _ = try await queue.runGPUCall(id: "task(big)") { _ in [UInt8](repeating: 1, count: 300) }
        XCTAssertNil(queue.result(of: "task(big)"), "larger than the whole budget")
        XCTAssertNotNil(queue.result(of: "task(r1)"), "and it pushed nothing out")
        XCTAssertNotNil(queue.result(of: "task(r2)"))
        XCTAssertEqual(try queue.status(of: "task(big)").state.finished?.outcome, .succeeded, "its status stays")
        _ = try await queue.runGPUCall(id: "task(unsized)") { _ in 42 }
        XCTAssertEqual(queue.result(of: "task(unsized)") as? Int, 42, "a result that says no size counts 0")
    }

    func testBadRetentionIsRefused() {
        // The guide's configuration (ProgressAndETA.md) is taken.
        XCTAssertNoThrow(
            try CallQueue(
                configuration: CallQueue.Configuration(
                    finishedTaskHistory: 10_000, resultHistory: 10_000,
                    finishedTaskMaxAge: .seconds(600), resultHistoryBytes: 256 << 20)))
        for configuration in [
            CallQueue.Configuration(finishedTaskMaxAge: .seconds(-1)),
            CallQueue.Configuration(resultHistoryBytes: -1),
        ] {
            XCTAssertThrowsError(try CallQueue(configuration: configuration)) { error in
                XCTAssertEqual((error as? CallQueueError)?.code, .invalidArgument)
            }
        }
    }
}
