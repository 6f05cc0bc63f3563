import CallQueueTestSupport
import Foundation
import XCTest

@testable import CallQueue

/// The output window against a reference model: seeded random emits of chunks and latest values of random
/// sizes (some past the whole budget), readers that start at random places, read at random times and leave;
/// after every step the real buffer and every read must be the model's.
final class PartialOutputModelTests: XCTestCase {
    /// The rules of ``PartialOutputLimits`` restated plainly: every chunk ever emitted, the index of the oldest
    /// kept, and the window's bytes summed again at every step.
    struct Model {
        let limits: PartialOutputLimits
        var chunks: [String] = []
        var start = 0
        var latest: String?
        var latestNumber: UInt64 = 0

        struct Reader {
            var next: Int
            var latestSeen: UInt64 = 0
            var hasReadStatus = false
        }

        var keptBytes: Int {
            chunks[start...].reduce(0) { $0 + $1.utf8.count } + (latest?.utf8.count ?? 0)
        }

        mutating func dropWhileOver() {
            while chunks.count - start > limits.maxBufferedChunks
                || (keptBytes > limits.maxBufferedBytes && start < chunks.count)
            {
                start += 1
            }
        }

        mutating func emitChunk(_ chunk: String) -> Bool {
            chunks.append(chunk)
            dropWhileOver()
            return start < chunks.count
        }

        mutating func emitLatest(_ value: String) -> Bool {
            guard value.utf8.count <= limits.maxBufferedBytes else { return false }
            latest = value
            latestNumber += 1
            dropWhileOver()
            return true
        }

        func hasNews(_ reader: Reader) -> Bool {
            !reader.hasReadStatus || reader.next < chunks.count || reader.latestSeen != latestNumber
        }

        /// What the reader reads: (first index, chunks, missed, latest, whether a status comes with it).
        func read(_ reader: inout Reader) -> (first: Int, chunks: [String], missed: Int, latest: String?, status: Bool)
        {
            let first = max(reader.next, start)
            let read = (
                first, Array(chunks[first...]), first - reader.next,
                reader.latestSeen != latestNumber ? latest : nil, !reader.hasReadStatus
            )
            reader.next = chunks.count
            reader.latestSeen = latestNumber
            reader.hasReadStatus = true
            return read
        }
    }

    static let steps = ProcessInfo.processInfo.environment["CALLQUEUE_MODEL_STEPS"].flatMap(Int.init) ?? 600

    func testTheWindowMatchesTheModel() async throws {
        let shapes: [PartialOutputLimits] = [
            .init(maxBufferedChunks: 8, maxBufferedBytes: 64),
            .init(maxBufferedChunks: 1, maxBufferedBytes: 10),
            .init(maxBufferedChunks: 100, maxBufferedBytes: 300),
            .init(maxBufferedChunks: 5, maxBufferedBytes: 1_000_000),
        ]
        for (index, limits) in shapes.enumerated() {
            try await run(seed: UInt64(index + 1) * 104_729, limits: limits, steps: Self.steps)
        }
    }

    private func run(seed: UInt64, limits: PartialOutputLimits, steps: Int) async throws {
        var random = SeededRandom(seed: seed)
        let lifecycle = try TaskLifecycle(configuration: .init(partialOutputs: limits))
        let id = try lifecycle.register(group: "gen")
        try lifecycle.start(id)
        var model = Model(limits: limits)
        var readers: [(model: Model.Reader, iterator: TaskOutputs<String, String>.Iterator)] = []
        let context = "seed \(seed), limits \(limits.maxBufferedChunks) chunks / \(limits.maxBufferedBytes) bytes"

        func randomText() -> String {
            let roll = Int.random(in: 0..<20, using: &random)
            let length: Int
            switch roll {
            case 0: length = limits.maxBufferedBytes + Int.random(in: 1...5, using: &random)  // past the budget
            case 1: length = limits.maxBufferedBytes  // exactly the budget
            default: length = Int.random(in: 0...max(1, limits.maxBufferedBytes / 3), using: &random)
            }
            return String(repeating: "x", count: length)
        }

        for step in 0..<steps {
            let here = "\(context), step \(step)"
            switch Int.random(in: 0..<10, using: &random) {
            case 0..<4:
                let chunk = "\(step):" + randomText()
                XCTAssertEqual(lifecycle.emitChunk(chunk, for: id), model.emitChunk(chunk), here)
            case 4:
                let value = randomText()
                XCTAssertEqual(lifecycle.emitLatest(value, for: id), model.emitLatest(value), here)
            case 5 where readers.count < 6:
                let after: Int? =
                    Bool.random(using: &random)
                    ? nil : Int.random(in: -3...(model.chunks.count + 3), using: &random)
                let next = min(max(0, (after ?? -1) + 1), model.chunks.count)
                let outputs = try lifecycle.outputs(of: id, latest: String.self, chunks: String.self, after: after)
                readers.append((Model.Reader(next: next), outputs.makeAsyncIterator()))
            case 6 where !readers.isEmpty:
                readers.remove(at: Int.random(in: 0..<readers.count, using: &random))
            default:
                guard !readers.isEmpty else { continue }
                let index = Int.random(in: 0..<readers.count, using: &random)
                guard model.hasNews(readers[index].model) else { continue }
                let expected = model.read(&readers[index].model)
                guard let update = await readers[index].iterator.next() else {
                    return XCTFail("\(here): the sequence ended early")
                }
                XCTAssertEqual(update.chunks.map(\.value), expected.chunks, here)
                XCTAssertEqual(update.chunks.first?.index ?? expected.first, expected.first, here)
                XCTAssertEqual(update.missedChunks, expected.missed, here)
                XCTAssertEqual(update.latest, expected.latest, here)
                XCTAssertEqual(update.status != nil, expected.status, here)
                XCTAssertEqual(update.nextChunk, model.chunks.count, here)
            }
            let (first, next, bytes) = lifecycle.scheduler.inspect { state in
                let buffer = state.tasks[id]!.outputs
                return (buffer?.firstIndex ?? 0, buffer?.nextIndex ?? 0, buffer?.bufferedBytes ?? 0)
            }
            XCTAssertEqual(first, model.start, here)
            XCTAssertEqual(next, model.chunks.count, here)
            XCTAssertEqual(bytes, model.keptBytes, here)
            if first != model.start || next != model.chunks.count { return }
        }
        try lifecycle.finish(id, outcome: .succeeded)
        for index in readers.indices {
            let expected = model.read(&readers[index].model)
            let update = await readers[index].iterator.next()
            XCTAssertEqual(update?.chunks.map(\.value), expected.chunks, context)
            XCTAssertEqual(update?.missedChunks, expected.missed, context)
            XCTAssertEqual(update?.status?.state.finished?.outcome, .succeeded, context)
            let end = await readers[index].iterator.next()
            XCTAssertNil(end, context)
        }
        // A reader that comes after the finish: its chunks are counted as missed from where it starts.
        for after in [nil, -2, 0, model.chunks.count / 2, model.chunks.count + 4] {
            let start = min(max(0, (after ?? -1) + 1), model.chunks.count)
            var iterator = try lifecycle.outputs(of: id, latest: String.self, chunks: String.self, after: after)
                .makeAsyncIterator()
            let update = await iterator.next()
            XCTAssertEqual(update?.missedChunks, model.chunks.count - start, "\(context), after the finish")
            XCTAssertEqual(update?.latest, model.latest, "\(context), after the finish")
            XCTAssertEqual(update?.chunks.count, 0, context)
        }
    }
}
