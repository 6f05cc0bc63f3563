import CallQueueTestSupport
import Foundation
import XCTest

@testable import CallQueue

/// Fair share against a plain reference: a simulation that keeps the waiting calls in an array, sorts it from
/// scratch at every step, and applies the rules as the documentation states them. Seeded random arrivals
/// (keys, priorities), cancels and finishes drive the real queue and the model side by side; after every step
/// each live call's state and place, every start and every refusal must be the model's.
final class FairShareModelTests: XCTestCase {
    /// The rules, restated as simply as possible.
    struct Model {
        struct Call {
            var id: Int
            var key: FairnessKey?
            var level: Int
            var tag: UInt64
            var sequence: Int
            /// Calls of a higher level that joined after this one while it waited below the top.
            var passedBy = 0
        }

        let limit: Int
        let maxQueuedPerKey: Int?
        let maxRunningPerKey: Int?
        let agingArrivals: Int
        let weights: [FairnessKey: Double]

        var waiting: [Call] = []
        /// Running calls: id to key.
        var running: [Int: FairnessKey?] = [:]
        var lastFinish: [FairnessKey?: UInt64] = [:]
        var virtualTime: UInt64 = 0
        var sequence = 0

        func stride(_ key: FairnessKey?) -> UInt64 {
            FairShare.stride(weight: key.flatMap { weights[$0] } ?? 1)
        }

        /// The waiting calls in the order they start: higher level, then smaller tag, then earlier arrival.
        var order: [Call] {
            waiting.sorted { a, b in
                if a.level != b.level { return a.level > b.level }
                if a.tag != b.tag { return a.tag < b.tag }
                return a.sequence < b.sequence
            }
        }

        func runningCount(_ key: FairnessKey?) -> Int { running.values.count { $0 == key } }
        func isCapped(_ key: FairnessKey?) -> Bool { maxRunningPerKey.map { runningCount(key) >= $0 } ?? false }
        var head: Call? { order.first { !isCapped($0.key) } }
        func place(of id: Int) -> Int? { order.firstIndex { $0.id == id } }

        /// A key with nothing waiting or running is forgotten; with no key left, virtual time starts over.
        mutating func forgetIdle(_ key: FairnessKey?) {
            guard !waiting.contains(where: { $0.key == key }), runningCount(key) == 0 else { return }
            lastFinish[key] = nil
            if lastFinish.isEmpty { virtualTime = 0 }
        }

        mutating func tag(_ key: FairnessKey?) -> UInt64 {
            let start = max(virtualTime, lastFinish[key] ?? 0)
            let (sum, overflow) = start.addingReportingOverflow(stride(key))
            lastFinish[key] = overflow ? .max : sum
            return start
        }

        enum Admission: Equatable {
            case started
            case waiting
            case refused
        }

        mutating func admit(id: Int, key: FairnessKey?, level: Int) -> Admission {
            let wouldWait = head != nil || isCapped(key) || running.count >= limit
            if wouldWait, let cap = maxQueuedPerKey, waiting.count(where: { $0.key == key }) >= cap {
                return .refused
            }
            sequence += 1
            let start = tag(key)
            guard wouldWait else {
                virtualTime = max(virtualTime, start)
                running[id] = key
                return .started
            }
            for index in waiting.indices where waiting[index].level < level {
                waiting[index].passedBy += 1
                if waiting[index].passedBy >= agingArrivals { waiting[index].level = CallPriority.highest.level }
            }
            waiting.append(Call(id: id, key: key, level: level, tag: start, sequence: sequence))
            return .waiting
        }

        /// Starts heads while slots are free; returns the ids started, in order.
        mutating func serve() -> [Int] {
            var started: [Int] = []
            while running.count < limit, let head {
                waiting.removeAll { $0.id == head.id }
                virtualTime = max(virtualTime, head.tag)
                running[head.id] = head.key
                started.append(head.id)
            }
            return started
        }

        mutating func finish(_ id: Int) -> [Int] {
            guard let key = running.removeValue(forKey: id) else { return [] }
            forgetIdle(key)
            return serve()
        }

        mutating func cancelWaiting(_ id: Int) -> [Int] {
            guard let index = waiting.firstIndex(where: { $0.id == id }) else { return [] }
            let key = waiting.remove(at: index).key
            forgetIdle(key)
            return serve()
        }
    }

    private struct Job {
        var handle: JobHandle<Void>
        var gate: Gate
    }

    private static var defaultSteps: Int {
        ProcessInfo.processInfo.environment["CALLQUEUE_MODEL_STEPS"].flatMap(Int.init) ?? 600
    }

    /// Several seeds and shapes: one slot and several, with and without caps, with aging that fires often.
    func testTheQueueFollowsTheReferenceModel() async throws {
        let shapes: [(limit: Int, queued: Int?, running: Int?, aging: Int)] = [
            (1, nil, nil, 1_000),
            (1, 3, 1, 6),
            (2, 4, 1, 4),
            (3, nil, 2, 9),
        ]
        for (index, shape) in shapes.enumerated() {
            try await runModel(
                seed: UInt64(index + 1) * 7_919, steps: Self.defaultSteps, limit: shape.limit,
                maxQueuedPerKey: shape.queued, maxRunningPerKey: shape.running, agingArrivals: shape.aging)
        }
    }

    private func runModel(
        seed: UInt64, steps: Int, limit: Int, maxQueuedPerKey: Int?, maxRunningPerKey: Int?, agingArrivals: Int
    ) async throws {
        let weights: [FairnessKey: Double] = ["k0": 1, "k1": 2, "k2": 4, "k3": 0.5]
        let fairShare = FairShare(
            maxQueuedPerKey: maxQueuedPerKey, maxRunningPerKey: maxRunningPerKey, weights: weights,
            agingArrivals: agingArrivals)
        let queue = try CallQueue(
            configuration: .init(
                groups: ["gpu": .init(limit: .limited(limit), discipline: .fairShare(fairShare))],
                positionUpdateInterval: .zero))
        var model = Model(
            limit: limit, maxQueuedPerKey: maxQueuedPerKey, maxRunningPerKey: maxRunningPerKey,
            agingArrivals: agingArrivals, weights: weights)
        var random = SeededRandom(seed: seed)
        var jobs: [Int: Job] = [:]
        var nextID = 0
        var refusals = 0
        var starts = 0
        var diverged = false
        let context =
            "seed \(seed), limit \(limit), caps \(String(describing: maxQueuedPerKey))/"
            + "\(String(describing: maxRunningPerKey)), aging \(agingArrivals)"

        for step in 0..<steps {
            let roll = Int.random(in: 0..<100, using: &random)
            if roll < 55 {
                nextID += 1
                let id = nextID
                let keyRoll = Int.random(in: 0..<10, using: &random)
                // Mostly a few known keys (with weights), some calls without a key, some keys seen once.
                let key: FairnessKey? =
                    keyRoll < 6 ? FairnessKey("k\(keyRoll % 4)") : keyRoll < 8 ? nil : FairnessKey("once-\(id)")
                let level = Int.random(in: CallPriority.lowest.level...CallPriority.highest.level, using: &random)
                let gate = Gate()
                let expected = model.admit(id: id, key: key, level: level)
                do {
                    let handle = try queue.submit(
                        id: TaskID("task(\(id))"), group: "gpu",
                        fairness: CallFairness(key: key, priority: CallPriority(level: level))
                    ) { _ in await gate.wait() }
                    jobs[id] = Job(handle: handle, gate: gate)
                    XCTAssertNotEqual(expected, .refused, "\(context), step \(step): admitted, model refused")
                    if expected == .started { starts += 1 }
                } catch let error as CallQueueError {
                    XCTAssertEqual(error.code, .tooManyQueued, "\(context), step \(step)")
                    XCTAssertEqual(error.fairnessKey, key, "\(context), step \(step)")
                    XCTAssertNotNil(error.retryAfter, "\(context), step \(step)")
                    XCTAssertEqual(expected, .refused, "\(context), step \(step): refused, model admitted")
                    refusals += 1
                }
            } else if roll < 85, let id = model.running.keys.sorted().randomElement(using: &random) {
                // A running call finishes: its slot goes to the model's next heads.
                let started = model.finish(id)
                starts += started.count
                jobs[id]?.gate.open()
                _ = await jobs[id]?.handle.response
                jobs[id] = nil
            } else if let call = model.waiting.sorted(by: { $0.id < $1.id }).randomElement(using: &random) {
                let started = model.cancelWaiting(call.id)
                starts += started.count
                XCTAssertTrue(try queue.cancel(TaskID("task(\(call.id))")), "\(context), step \(step)")
                _ = await jobs[call.id]?.handle.response
                jobs[call.id] = nil
            }
            // The first step that differs is the one to read: the run stops there.
            guard try matches(queue, model, jobs: jobs, context: "\(context), step \(step)") else {
                diverged = true
                break
            }
        }
        XCTAssertTrue(diverged || starts > steps / 10, "\(context): the run exercised starts")
        if !diverged, maxQueuedPerKey != nil {
            XCTAssertGreaterThan(refusals, 0, "\(context): the run exercised refusals")
        }
        for id in model.waiting.map(\.id) { _ = try queue.cancel(TaskID("task(\(id))")) }
        for job in jobs.values { job.gate.open() }
        for job in jobs.values { _ = await job.handle.response }
    }

    /// Compares every live job with the model; reports and returns `false` at the first difference.
    private func matches(_ queue: CallQueue, _ model: Model, jobs: [Int: Job], context: String) throws -> Bool {
        let order = model.order
        for id in jobs.keys.sorted() {
            let status = try queue.status(of: TaskID("task(\(id))"))
            let problem: String?
            if model.running[id] != nil {
                problem = status.state.running == nil ? "task \(id) should run, is \(status.state)" : nil
            } else if let place = order.firstIndex(where: { $0.id == id }) {
                let queued = status.state.queued
                problem =
                    queued?.position != place || queued?.queueSize != order.count
                    ? "task \(id): \(status.state), the model's place \(place) of \(order.count)" : nil
            } else {
                problem = "task \(id) is live here and unknown to the model"
            }
            if let problem {
                XCTFail("\(context): \(problem)")
                return false
            }
        }
        return true
    }
}
