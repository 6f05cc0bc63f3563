import CallQueueTestSupport
import Foundation
import XCTest

@testable import CallQueue

/// Fair share in scenarios a public server meets: a flood and a newcomer, weights over a long run, caps per key,
/// priorities and their starvation guard, batching, update streams, keys in statuses, and bad input. No timing:
/// gates hold the running calls, and places are read from statuses.
final class FairShareTests: XCTestCase {
    private func makeQueue(
        limit: Int = 1, _ fairShare: FairShare = FairShare(), interval: Duration = .zero
    ) throws -> CallQueue {
        try CallQueue(
            configuration: .init(
                groups: ["gpu": .init(limit: .limited(limit), discipline: .fairShare(fairShare))],
                positionUpdateInterval: interval))
    }

    private func position(_ queue: CallQueue, _ id: TaskID) throws -> Int? {
        try queue.status(of: id).state.queued?.position
    }

    /// One client queues 100 calls; a second client's first call waits for none of them: it goes ahead of the
    /// whole backlog, behind only the call that runs. In arrival order it would wait for all 100.
    func testANewcomersFirstCallGoesAheadOfABacklog() async throws {
        for discipline in ["fair", "fifo"] {
            let queue =
                discipline == "fair"
                ? try makeQueue()
                : try CallQueue(configuration: .init(groups: ["gpu": .init(limit: 1)]))
            let gate = Gate()
            var handles: [JobHandle<Void>] = []
            let heavy = CallFairness(key: "heavy")
            for index in 0...100 {
                handles.append(
                    try queue.submit(id: TaskID("task(heavy-\(index))"), group: "gpu", fairness: heavy) { _ in
                        await gate.wait()
                    })
            }
            handles.append(
                try queue.submit(id: "task(light)", group: "gpu", fairness: CallFairness(key: "light")) { _ in
                    await gate.wait()
                })
            XCTAssertEqual(try position(queue, "task(light)"), discipline == "fair" ? 0 : 100, discipline)
            XCTAssertEqual(try position(queue, "task(heavy-1)"), discipline == "fair" ? 1 : 0, discipline)
            gate.open()
            for handle in handles { _ = await handle.response }
        }
    }

    /// Keys of weights 1, 2 and 4, all backlogged, share 7,000 starts 1:2:4 within 5%; equal weights give a
    /// Jain's index of at least 0.99. Driven on the line itself: starts are what a discipline decides.
    func testWeightsShareTheStartsInProportion() {
        func shares(weights: [Double], starts: Int) -> [Int] {
            var line = FairShareLine<Int>(FairShare())
            var ticket: UInt64 = 0
            var keyOfTicket: [UInt64: Int] = [:]
            func enqueue(_ key: Int) {
                ticket += 1
                keyOfTicket[ticket] = key
                line.enqueue(
                    ticket: ticket, weight: 0,
                    order: LineOrder(
                        key: FairnessKey("k\(key)"), stride: FairShare.stride(weight: weights[key]),
                        level: CallPriority.normal.level),
                    entry: key)
            }
            for key in weights.indices {
                for _ in 0..<20 { enqueue(key) }
            }
            var counts = [Int](repeating: 0, count: weights.count)
            for _ in 0..<starts {
                let started = line.removeHead()
                let key = keyOfTicket[started.ticket]!
                counts[key] += 1
                line.released(ticket: started.ticket)
                enqueue(key)  // still backlogged
            }
            return counts
        }
        let weighted = shares(weights: [1, 2, 4], starts: 7_000)
        for (index, expected) in [1_000.0, 2_000, 4_000].enumerated() {
            XCTAssertEqual(Double(weighted[index]), expected, accuracy: expected * 0.05, "\(weighted)")
        }
        let equal = shares(weights: [1, 1, 1, 1, 1], starts: 5_000).map(Double.init)
        let jain = pow(equal.reduce(0, +), 2) / (Double(equal.count) * equal.map { $0 * $0 }.reduce(0, +))
        XCTAssertGreaterThanOrEqual(jain, 0.99, "\(equal)")
    }

    /// A key at its queued cap is refused with a typed error that names it and says when its next call
    /// starts; other keys are still admitted.
    func testAKeyAtItsQueuedCapIsRefusedWithARetryAfter() async throws {
        let queue = try makeQueue(FairShare(maxQueuedPerKey: 2))
        let gate = Gate()
        let greedy = CallFairness(key: "greedy")
        var handles = [try queue.submit(group: "gpu", fairness: greedy) { _ in await gate.wait() }]
        handles += try (0..<2).map { _ in try queue.submit(group: "gpu", fairness: greedy) { _ in await gate.wait() } }
        do {
            _ = try queue.submit(group: "gpu", fairness: greedy) { _ in }
            XCTFail("a third waiting call of one key is refused")
        } catch let error as CallQueueError {
            XCTAssertEqual(error.code, .tooManyQueued)
            XCTAssertEqual(error.fairnessKey, "greedy")
            XCTAssertEqual(error.queueSize, 2)
            XCTAssertEqual(error.maxQueueSize, 2)
            XCTAssertEqual(error.group, "gpu")
            let retryAfter = try XCTUnwrap(error.retryAfter)
            XCTAssertGreaterThan(retryAfter, .zero, "the key's next call waits for the running one")
            XCTAssertGreaterThanOrEqual(try XCTUnwrap(error.retryAfterSeconds), 1)
            XCTAssertTrue(error.message.contains("greedy"), error.message)
            let decoded = try JSONDecoder().decode(CallQueueError.self, from: JSONEncoder().encode(error))
            XCTAssertEqual(decoded, error, "the wire format keeps the key and the retry-after")
        }
        handles.append(try queue.submit(group: "gpu", fairness: CallFairness(key: "other")) { _ in })
        gate.open()
        for handle in handles { _ = await handle.response }
    }

    /// With a running cap of 1, a key's second call waits while another key's call takes the second slot,
    /// and its place counts the passed call until it starts.
    func testACappedKeyIsPassed() async throws {
        let queue = try makeQueue(limit: 2, FairShare(maxRunningPerKey: 1))
        let gates = (0..<3).map { _ in Gate() }
        let first = try queue.submit(id: "task(a1)", group: "gpu", fairness: .init(key: "a")) { _ in
            await gates[0].wait()
        }
        let second = try queue.submit(id: "task(a2)", group: "gpu", fairness: .init(key: "a")) { _ in
            await gates[1].wait()
        }
        XCTAssertEqual(try position(queue, "task(a2)"), 0, "a free slot, but its key is at its cap")
        let other = try queue.submit(id: "task(b1)", group: "gpu", fairness: .init(key: "b")) { _ in
            await gates[2].wait()
        }
        XCTAssertNotNil(try queue.status(of: "task(b1)").state.running, "b passes a's waiting call")
        XCTAssertEqual(try position(queue, "task(a2)"), 0)
        gates[0].open()
        _ = await first.response
        XCTAssertNotNil(try queue.status(of: "task(a2)").state.running, "a's running call finished: a2 starts")
        gates[1].open()
        gates[2].open()
        _ = await second.response
        _ = await other.response
    }

    /// The estimated wait that admission judges is the one of the place the call would take: a newcomer ahead of
    /// a backlog is admitted where the backlog's next call is refused.
    func testTheEstimatedWaitIsJudgedAtTheFairPlace() async throws {
        let clock = ManualClock()
        let queue = try CallQueue(
            configuration: .init(
                groups: ["gpu": .init(limit: 1, discipline: .fairShare(FairShare()))],
                maxEstimatedWait: .seconds(250), initialRunTimeEstimate: .seconds(100), clock: clock.lifecycleClock))
        let gate = Gate()
        let heavy = CallFairness(key: "heavy")
        var handles = try (0..<3).map { _ in
            try queue.submit(group: "gpu", fairness: heavy) { _ in await gate.wait() }
        }
        // One runs (100 s left), two wait: the next of the same key would wait 300 s.
        await assertThrowsCallQueueError(.waitTooLong) {
            _ = try queue.submit(group: "gpu", fairness: heavy) { _ in }
        }
        handles.append(try queue.submit(group: "gpu", fairness: .init(key: "light")) { _ in await gate.wait() })
        gate.open()
        for handle in handles { _ = await handle.response }
    }

    /// Under the process-wide limit, a fair-share group's head waits for the permit and says so; the permit goes
    /// to it when another group's call ends, and the next key's call then waits for the group's own slot.
    func testFairShareUnderTheProcessWideLimit() async throws {
        let queue = try CallQueue(
            configuration: .init(
                groups: [
                    "fair": .init(limit: 1, discipline: .fairShare(FairShare())), "plain": .init(limit: 1),
                ],
                processWideLimit: 1))
        let gates = (0..<3).map { _ in Gate() }
        let holder = try queue.submit(id: "task(plain)", group: "plain") { _ in await gates[0].wait() }
        let first = try queue.submit(id: "task(x1)", group: "fair", fairness: .init(key: "x")) { _ in
            await gates[1].wait()
        }
        let second = try queue.submit(id: "task(y1)", group: "fair", fairness: .init(key: "y")) { _ in
            await gates[2].wait()
        }
        let head = try XCTUnwrap(try queue.status(of: "task(x1)").state.queued)
        XCTAssertEqual(head.heldBy, .processLimit)
        XCTAssertEqual(head.position, 0)
        XCTAssertEqual(try position(queue, "task(y1)"), 1)
        gates[0].open()
        _ = await holder.response
        XCTAssertNotNil(try queue.status(of: "task(x1)").state.running)
        let next = try XCTUnwrap(try queue.status(of: "task(y1)").state.queued)
        XCTAssertEqual(next.position, 0)
        XCTAssertEqual(next.heldBy, .group)
        gates[1].open()
        gates[2].open()
        _ = await first.response
        _ = await second.response
    }

    /// Weights of the group's budget still hold under fair share: the head that does not fit blocks a call
    /// behind it that would, and both start once the budget frees.
    func testTheBudgetStillBlocksBehindTheHead() async throws {
        let queue = try CallQueue(
            configuration: .init(groups: ["gpu": .init(limit: 4, budget: 10, discipline: .fairShare(FairShare()))]))
        let gates = (0..<3).map { _ in Gate() }
        let holder = try queue.submit(id: "task(a)", group: "gpu", weight: 6, fairness: .init(key: "a")) { _ in
            await gates[0].wait()
        }
        let big = try queue.submit(id: "task(b)", group: "gpu", weight: 6, fairness: .init(key: "b")) { _ in
            await gates[1].wait()
        }
        let small = try queue.submit(id: "task(c)", group: "gpu", weight: 2, fairness: .init(key: "c")) { _ in
            await gates[2].wait()
        }
        XCTAssertEqual(try position(queue, "task(b)"), 0)
        XCTAssertEqual(try position(queue, "task(c)"), 1, "it would fit, but the head goes first")
        gates[0].open()
        _ = await holder.response
        XCTAssertNotNil(try queue.status(of: "task(b)").state.running)
        XCTAssertNotNil(try queue.status(of: "task(c)").state.running)
        gates[1].open()
        gates[2].open()
        _ = await big.response
        _ = await small.response
    }

    /// A deadline ends a wait under fair share as in arrival order: the call leaves with `timedOut`, and the call
    /// behind it moves up.
    func testADeadlineEndsAWait() async throws {
        let clock = ManualClock()
        let queue = try CallQueue(
            configuration: .init(
                groups: ["gpu": .init(limit: 1, discipline: .fairShare(FairShare()))], clock: clock.lifecycleClock))
        let gate = Gate()
        let holder = try queue.submit(id: "task(holder)", group: "gpu") { _ in await gate.wait() }
        let impatient = try queue.submit(
            id: "task(impatient)", group: "gpu", fairness: .init(key: "a"), deadline: clock.now + .seconds(5)
        ) { _ in }
        let patient = try queue.submit(id: "task(patient)", group: "gpu", fairness: .init(key: "b")) { _ in }
        XCTAssertEqual(try position(queue, "task(patient)"), 1)
        await waitUntil("the deadline's timer sleeps") { clock.sleeperCount == 1 }
        clock.advance(by: .seconds(5))
        await assertThrowsCallQueueError(.timedOut) { try await impatient.value }
        XCTAssertEqual(try position(queue, "task(patient)"), 0)
        gate.open()
        _ = await holder.response
        _ = await patient.response
    }

    /// A low-priority call is passed by higher ones, but by no more than `agingArrivals` calls that came after
    /// it: then it rises to the top level, ahead of them.
    func testPriorityPassesAndAgingStopsStarvation() async throws {
        let queue = try makeQueue(FairShare(agingArrivals: 3))
        let gate = Gate()
        var handles = [try queue.submit(id: "task(holder)", group: "gpu") { _ in await gate.wait() }]
        handles.append(
            try queue.submit(id: "task(low)", group: "gpu", fairness: .init(key: "l", priority: .lowest)) { _ in })
        var heard: [Int?] = []
        for index in 1...4 {
            handles.append(
                try queue.submit(
                    id: TaskID("task(high-\(index))"), group: "gpu",
                    fairness: .init(key: FairnessKey("h\(index)"), priority: .high)
                ) { _ in })
            heard.append(try position(queue, "task(low)"))
        }
        // Passed by the first two; the third is its third later arrival: it rises above them all.
        XCTAssertEqual(heard, [1, 2, 0, 0])
        XCTAssertEqual(try position(queue, "task(high-1)"), 1)
        XCTAssertEqual(try position(queue, "task(high-4)"), 4)
        gate.open()
        for handle in handles { _ = await handle.response }
    }

    /// A batch takes its members in the group's order: the newcomer's member before the backlog's second.
    func testABatchTakesItsMembersInTheFairOrder() async throws {
        let queue = try makeQueue()
        let batches = Recorder<[String]>()
        let batcher = queue.makeBatcher(group: "gpu", maxBatchSize: 2) { (inputs: [String], _: BatchContext) in
            batches.append(inputs)
            return inputs
        }
        let gate = Gate()
        let holder = try queue.submit(id: "task(holder)", group: "gpu") { _ in await gate.wait() }
        let members =
            try ["a1", "a2", "a3"].map { try batcher.submit($0, fairness: .init(key: "a")) }
            + [try batcher.submit("b1", fairness: .init(key: "b"))]
        gate.open()
        _ = await holder.response
        for member in members { _ = try await member.value }
        XCTAssertEqual(batches.elements.first, ["a1", "b1"])
        XCTAssertEqual(batches.elements.flatMap { $0 }.sorted(), ["a1", "a2", "a3", "b1"])
    }

    /// A waiting reader hears its place grow when a newcomer goes ahead of it, with a newer version.
    func testAReaderHearsItsPlaceGrow() async throws {
        let queue = try makeQueue()
        let gate = Gate()
        let holder = try queue.submit(id: "task(holder)", group: "gpu", fairness: .init(key: "a")) { _ in
            await gate.wait()
        }
        let waiting = try queue.submit(id: "task(a2)", group: "gpu", fairness: .init(key: "a")) { _ in }
        var updates = try queue.updates(of: "task(a2)").makeAsyncIterator()
        let firstUpdate = await updates.next()
        let first = try XCTUnwrap(firstUpdate)
        XCTAssertEqual(first.state.queued?.position, 0)
        let newcomer = try queue.submit(id: "task(b1)", group: "gpu", fairness: .init(key: "b")) { _ in }
        let secondUpdate = await updates.next()
        let second = try XCTUnwrap(secondUpdate)
        XCTAssertEqual(second.state.queued?.position, 1, "the newcomer went ahead")
        XCTAssertGreaterThan(second.version, first.version)
        gate.open()
        for handle in [holder, waiting, newcomer] { _ = await handle.response }
    }

    /// Statuses carry the key only where the group reports keys.
    func testStatusesCarryKeysOnlyWhenAskedTo() async throws {
        for reports in [false, true] {
            let queue = try makeQueue(FairShare(reportsKeys: reports))
            let handle = try queue.submit(id: "task(one)", group: "gpu", fairness: .init(key: "user-7")) { _ in }
            XCTAssertEqual(try queue.status(of: "task(one)").fairnessKey, reports ? "user-7" : nil)
            _ = await handle.response
            XCTAssertEqual(try queue.status(of: "task(one)").fairnessKey, reports ? "user-7" : nil)
            let json = String(decoding: try JSONEncoder().encode(try queue.status(of: "task(one)")), as: UTF8.self)
            XCTAssertEqual(json.contains("user-7"), reports, json)
        }
    }

    /// A key taken from a task-local reaches every queued call of the task that set it.
    func testTheTaskLocalFairnessIsUsed() async throws {
        let queue = try makeQueue(FairShare(maxQueuedPerKey: 0))
        let gate = Gate()
        let holder = try queue.submit(group: "gpu", fairness: .init(key: "session-1")) { _ in await gate.wait() }
        await CallFairness.$current.withValue(CallFairness(key: "session-1")) {
            await assertThrowsCallQueueError(.tooManyQueued) { _ = try queue.submit(group: "gpu") { _ in } }
            await assertThrowsCallQueueError(.tooManyQueued) {
                try await queue.runQueued(group: "gpu") {}
            }
            let wrapped = wrapGPUCall(queue, group: "gpu") { (value: Int) in value }
            let response = await wrapped(1)
            XCTAssertEqual(response.failure?.code, "tooManyQueued")
        }
        gate.open()
        _ = await holder.response
    }

    /// Bad keys, weights and priorities are typed errors, never a trap; the queue serves on afterwards.
    func testBadInputIsATypedError() async throws {
        let weights: [FairnessKey: Double] = [:]
        let queue = try makeQueue(
            FairShare(
                weights: weights,
                weightOfKey: { key in
                    switch key.value {
                    case "zero": return 0
                    case "nan": return .nan
                    case "huge": return Double(Int.max)
                    case "negative": return -1
                    default: return 1
                    }
                }))
        let longKey = FairnessKey(String(repeating: "x", count: FairnessKey.maxUTF8Length + 1))
        let bad: [CallFairness] = [
            .init(key: ""), .init(key: longKey), .init(key: "zero"), .init(key: "nan"), .init(key: "huge"),
            .init(key: "negative"), .init(priority: CallPriority(level: -1)),
            .init(priority: CallPriority(level: CallPriority.highest.level + 1)), .init(priority: .init(level: .max)),
        ]
        for fairness in bad {
            await assertThrowsCallQueueError(.invalidArgument) {
                _ = try queue.submit(group: "gpu", fairness: fairness) { _ in }
            }
        }
        XCTAssertThrowsError(try FairnessKey(utf8: [0xFF, 0xFE, 0x41])) {
            XCTAssertEqual(($0 as? CallQueueError)?.code, .invalidArgument)
        }
        XCTAssertEqual(try FairnessKey(utf8: Array("user-1".utf8)), "user-1")
        XCTAssertThrowsError(try FairnessKey(utf8: [])) {
            XCTAssertEqual(($0 as? CallQueueError)?.code, .invalidArgument)
        }
        try await queue.runQueued(group: "gpu", fairness: .init(key: "fine")) {}
        XCTAssertEqual(queue.groups.first { $0.group == "gpu" }?.waiting, 0)

        // Bad configurations are refused when the queue is made.
        let badConfigurations: [FairShare] = [
            FairShare(weights: ["a": 0]), FairShare(weights: ["a": .nan]), FairShare(weights: ["a": .infinity]),
            FairShare(weights: ["": 1]), FairShare(defaultWeight: 5_000), FairShare(maxQueuedPerKey: -1),
            FairShare(maxRunningPerKey: 0), FairShare(agingArrivals: 0),
        ]
        for fairShare in badConfigurations {
            XCTAssertThrowsError(try makeQueue(fairShare), "\(fairShare)") {
                XCTAssertEqual(($0 as? CallQueueError)?.code, .invalidArgument)
            }
        }
    }

    /// A cluster-wide group with fair share is refused when the queue is made: the replicas would each order
    /// their own calls.
    func testAClusterWideGroupRefusesFairShare() throws {
        XCTAssertThrowsError(
            try CallQueue(
                configuration: .init(
                    groups: ["gpu": .init(limit: 1, discipline: .fairShare(FairShare()))],
                    permitSources: ["gpu": InMemoryCluster(slots: 1).source(replica: "r1")]))
        ) { error in
            XCTAssertEqual((error as? CallQueueError)?.code, .invalidArgument)
            XCTAssertTrue("\(error)".contains("fair share"), "\(error)")
        }
    }

    /// Twenty thousand distinct keys, one call each, leave the line's tables as small as they started; two
    /// hundred thousand on the line itself likewise. (The F1 benchmark runs a million and reads the memory.)
    func testIdleKeysCostNothing() async throws {
        let queue = try makeQueue(FairShare(maxQueuedPerKey: 4, maxRunningPerKey: 2))
        for index in 0..<stressIterations(20_000, minimum: 2_000) {
            try await queue.runQueued(group: "gpu", fairness: .init(key: FairnessKey("visitor-\(index)"))) {}
        }
        let (keys, capacity) = queue.scheduler.inspect { state in
            (state.groups["gpu"]?.line.fair?.keyCount, state.groups["gpu"]?.line.fair?.retainedCapacity)
        }
        XCTAssertEqual(keys, 0)
        XCTAssertLessThan(try XCTUnwrap(capacity), 64)

        var line = FairShareLine<Int>(FairShare(maxQueuedPerKey: 4, maxRunningPerKey: 2))
        for index in 0..<stressIterations(200_000, minimum: 20_000) {
            let ticket = UInt64(index)
            let order = LineOrder(key: FairnessKey("visitor-\(index)"), stride: 1, level: 2)
            line.enqueue(ticket: ticket, weight: 0, order: order, entry: index)
            if index % 2 == 0 {
                _ = line.removeHead()
                line.released(ticket: ticket)
            } else {
                _ = line.remove(ticket: ticket)
            }
        }
        XCTAssertEqual(line.keyCount, 0)
        XCTAssertTrue(line.isEmpty)
        XCTAssertLessThan(line.retainedCapacity, 64)
    }
}
