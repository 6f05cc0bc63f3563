import CallQueueTestSupport
import XCTest

@testable import CallQueue

/// A line discipline alone, without concurrency, against a plain model recomputed from scratch at every step:
/// seeded random enqueues, removals by ticket (present or not), head removals and clears.
final class LineDisciplineTests: XCTestCase {
    /// The FIFO reference: the waiting tickets sorted by arrival, each with its weight and entry.
    private struct ArrivalOrderModel {
        var waiting: [(ticket: UInt64, weight: Int, entry: Int)] = []

        var order: [UInt64] { waiting.sorted { $0.ticket < $1.ticket }.map(\.ticket) }
        func place(of ticket: UInt64) -> Int? { order.firstIndex(of: ticket) }
    }

    private func assertMatches<Line: LineDiscipline>(
        _ line: Line, _ model: ArrivalOrderModel, issued: UInt64, step: Int, seed: UInt64,
        file: StaticString = #filePath, lineNumber: UInt = #line
    ) where Line.Entry == Int {
        let context = "seed \(seed), step \(step)"
        let order = model.order
        XCTAssertEqual(line.count, order.count, context, file: file, line: lineNumber)
        XCTAssertEqual(line.isEmpty, order.isEmpty, context, file: file, line: lineNumber)
        XCTAssertEqual(line.head?.ticket, order.first, context, file: file, line: lineNumber)
        // Every ticket ever issued: its place, or absence. The model's places are recomputed from its order.
        var places: [UInt64: Int] = [:]
        for (place, ticket) in order.enumerated() { places[ticket] = place }
        for ticket in 1...max(issued, 1) {
            let place = line.place(of: ticket)
            if place != places[ticket] || line.contains(ticket: ticket) != (places[ticket] != nil) {
                XCTFail(
                    "\(context), ticket \(ticket): place \(String(describing: place)), model "
                        + "\(String(describing: places[ticket]))", file: file, line: lineNumber)
            }
        }
        for waiter in model.waiting {
            XCTAssertEqual(line.entry(ticket: waiter.ticket), waiter.entry, context, file: file, line: lineNumber)
        }
    }

    private func runModel<Line: LineDiscipline>(_ makeLine: () -> Line, seeds: Range<UInt64>, steps: Int)
    where Line.Entry == Int {
        for seed in seeds {
            var random = SeededRandom(seed: seed)
            var line = makeLine()
            var model = ArrivalOrderModel()
            var issued: UInt64 = 0
            for step in 0..<steps {
                switch Int.random(in: 0..<100, using: &random) {
                case 0..<50:
                    issued += 1
                    let weight = Int.random(in: 0...8, using: &random)
                    let entry = Int.random(in: 0...1_000, using: &random)
                    line.enqueue(ticket: issued, weight: weight, order: .arrival, entry: entry)
                    model.waiting.append((issued, weight, entry))
                case 50..<70 where !model.waiting.isEmpty:
                    let head = line.removeHead()
                    let expected = model.order[0]
                    XCTAssertEqual(head.ticket, expected, "seed \(seed), step \(step)")
                    let index = model.waiting.firstIndex { $0.ticket == expected }!
                    XCTAssertEqual(head.weight, model.waiting[index].weight)
                    model.waiting.remove(at: index)
                case 70..<92 where issued > 0:
                    let ticket = UInt64.random(in: 1...issued, using: &random)
                    let removed = line.remove(ticket: ticket)
                    let wasHead = model.order.first == ticket
                    if let index = model.waiting.firstIndex(where: { $0.ticket == ticket }) {
                        XCTAssertEqual(removed?.waiter.ticket, ticket, "seed \(seed), step \(step)")
                        XCTAssertEqual(removed?.wasHead, wasHead, "seed \(seed), step \(step)")
                        model.waiting.remove(at: index)
                    } else {
                        XCTAssertNil(removed, "seed \(seed), step \(step): ticket \(ticket) is not waiting")
                    }
                case 92..<97 where !model.waiting.isEmpty:
                    let index = Int.random(in: 0..<model.waiting.count, using: &random)
                    let value = Int.random(in: 0...1_000, using: &random)
                    line.update(ticket: model.waiting[index].ticket) { $0 = value }
                    model.waiting[index].entry = value
                case 97..<99:
                    let all = line.removeAll().map(\.ticket)
                    XCTAssertEqual(all, model.order, "seed \(seed), step \(step)")
                    model.waiting.removeAll()
                default:
                    break
                }
                assertMatches(line, model, issued: issued, step: step, seed: seed)
            }
        }
    }

    func testFIFOLineMatchesTheArrivalOrderModel() {
        let seeds = UInt64(stressIterations(40, minimum: 8))
        runModel({ FIFOLine<Int>() }, seeds: 0..<seeds, steps: 400)
    }
}
