import XCTest

@testable import CallQueue

/// The waiter queue against a plain array model, under long random sequences of operations that force
/// growth, wrap-around, tombstones, compaction and shrinking.
final class WaiterQueueTests: XCTestCase {
    private struct SplitMix64: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    private func assertMatches(
        _ queue: WaiterQueue<Int>, _ model: [UInt64], file: StaticString = #filePath, line: UInt = #line
    ) {
        XCTAssertEqual(queue.count, model.count, file: file, line: line)
        XCTAssertEqual(queue.first?.ticket, model.first, file: file, line: line)
    }

    func testRandomOperationsMatchAnArrayModel() {
        for seed in 0..<20 {
            var random = SplitMix64(state: UInt64(seed))
            var queue = WaiterQueue<Int>()
            var model: [UInt64] = []
            var nextTicket: UInt64 = 0
            for step in 0..<20_000 {
                let roll = Int.random(in: 0..<100, using: &random)
                // Phases that grow and phases that drain, so the ring grows, wraps and shrinks.
                let growing = (step / 2_000) % 2 == 0
                if roll < (growing ? 55 : 25) || model.isEmpty {
                    queue.append(ticket: nextTicket, weight: 1, continuation: Int(nextTicket))
                    model.append(nextTicket)
                    nextTicket += 1
                } else if roll < 75 {
                    let waiter = queue.removeFirst()
                    XCTAssertEqual(waiter.ticket, model.removeFirst())
                    XCTAssertEqual(waiter.continuation, Int(waiter.ticket))
                } else {
                    let index = Int.random(in: 0..<model.count, using: &random)
                    let ticket = model.remove(at: index)
                    let removed = queue.remove(ticket: ticket)
                    XCTAssertEqual(removed?.waiter.ticket, ticket)
                    XCTAssertEqual(removed?.wasFirst, index == 0)
                    XCTAssertNil(queue.remove(ticket: ticket))
                }
                assertMatches(queue, model)
                if step % 97 == 0, !model.isEmpty {
                    let index = Int.random(in: 0..<model.count, using: &random)
                    XCTAssertEqual(queue.position(of: model[index]), index, "seed \(seed) step \(step)")
                }
            }
            let rest = queue.removeAll().map(\.ticket)
            XCTAssertEqual(rest, model)
            XCTAssertTrue(queue.isEmpty)
        }
    }

    func testPositionsAtDepthWithScatteredRemovals() {
        var queue = WaiterQueue<Int>()
        let depth = 100_000
        for ticket in 0..<depth {
            queue.append(ticket: UInt64(ticket), weight: 1, continuation: ticket)
        }
        // Remove every third waiter: fewer than half, so they stay as tombstones.
        for ticket in stride(from: 1, to: depth, by: 3) {
            XCTAssertNotNil(queue.remove(ticket: UInt64(ticket)))
        }
        // Every query at this depth is a logarithmic walk; a linear scan per query would not finish.
        var checked = 0
        for ticket in 0..<depth where ticket % 3 != 1 {
            let expected = ticket - (ticket + 1) / 3
            XCTAssertEqual(queue.position(of: UInt64(ticket)), expected)
            checked += 1
        }
        XCTAssertEqual(checked, queue.count)
    }
}
