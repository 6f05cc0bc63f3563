#if Metrics
    import CoreMetrics
    import MetricsTestKit
    import XCTest

    @testable import CallQueue
    import CallQueueTestSupport

    final class MetricsObserverTests: XCTestCase {
        struct Broken: Error {}

        func testMetersTimersErrorsAndMemory() async throws {
            let metrics = TestMetrics()
            let device = ScriptedDevice()
            device.set(used: 3 << 30)
            let sampler = MemorySampler(monitor: device.monitor, pollRate: 1_000)
            let queue = try CallQueue(
                configuration: .init(observer: MetricsCallQueueObserver(factory: metrics), memorySampler: sampler)
            )
            let gate = Gate()
            let holder = Task {
                try await queue.runGPUCall(id: "task(a)", group: "gpu") { _ in
                    let before = sampler.readCount
                    await waitUntil { sampler.readCount > before }
                    await gate.wait()
                }
            }
            await waitForStatus(queue, "task(a)") { $0.isRunning }
            let waiter = Task { try await queue.runGPUCall(id: "task(b)", group: "gpu") { _ in throw Broken() } }
            await waitForStatus(queue, "task(b)") { $0.isQueued }
            let group = [("group", "gpu")]
            // The observer hears of a start and of an admission just after the state shows them: wait for the
            // meters to reach one waiting and one running (a bound that fails, never a timing).
            await waitUntil("one waiting and one running") {
                (try? metrics.expectMeter(MetricsCallQueueObserver.waitingLabel, group).lastValue) == 1
                    && (try? metrics.expectMeter(MetricsCallQueueObserver.runningLabel, group).lastValue) == 1
            }

            gate.open()
            try await holder.value
            _ = try? await waiter.value
            XCTAssertEqual(try metrics.expectMeter(MetricsCallQueueObserver.waitingLabel, group).lastValue, 0)
            XCTAssertEqual(try metrics.expectMeter(MetricsCallQueueObserver.runningLabel, group).lastValue, 0)
            XCTAssertEqual(try metrics.expectTimer(MetricsCallQueueObserver.waitTimeLabel, group).values.count, 2)
            XCTAssertEqual(try metrics.expectTimer(MetricsCallQueueObserver.runTimeLabel, group).values.count, 2)
            XCTAssertEqual(try metrics.expectCounter(MetricsCallQueueObserver.errorsLabel, group).lastValue, 1)
            let memory = try metrics.expectGauge(
                MetricsCallQueueObserver.memoryLabel,
                [("group", "gpu"), ("device", "scripted-0")]
            )
            XCTAssertEqual(memory.lastValue, Double(3 << 30))
            sampler.stop()
        }

        func testBatchSizesAreRecorded() async throws {
            let metrics = TestMetrics()
            let queue = try CallQueue(configuration: .init(observer: MetricsCallQueueObserver(factory: metrics)))
            let gate = Gate()
            let holder = try queue.submit(group: "gpu") { _ in await gate.wait() }
            let batcher = queue.makeBatcher(group: "gpu", maxBatchSize: 3) { (inputs: [Int], _: BatchContext) in inputs
            }
            let members = try (0..<5).map { try batcher.submit($0) }
            gate.open()
            try await holder.value
            for member in members { _ = try await member.value }
            let sizes = try metrics.expectRecorder(MetricsCallQueueObserver.batchSizeLabel, [("group", "gpu")])
            XCTAssertEqual(sizes.values, [3, 2])
        }
    }
#endif
