import XCTest

@testable import CallQueue

/// A device whose readings the test sets, counting the reads made of it.
final class ScriptedDevice: Sendable {
    private let state = LockedState<(used: UInt64, reads: Int, failing: Bool)>((0, 0, false))
    static let total: UInt64 = 24 << 30

    func set(used: UInt64) { state.withLock { $0.used = used } }
    func fail() { state.withLock { $0.failing = true } }
    var reads: Int { state.withLock { $0.reads } }

    struct DeviceFailed: Error, CustomStringConvertible {
        var description: String { "device fell off the bus" }
    }

    var monitor: ClosureDeviceMonitor {
        ClosureDeviceMonitor(device: DeviceIdentity(kind: "scripted", index: 0, name: "scripted GPU")) {
            try self.state.withLock { state in
                state.reads += 1
                if state.failing { throw DeviceFailed() }
                return DeviceMemory(
                    total: Self.total,
                    free: Self.total - state.used,
                    used: state.used,
                    allocatorActive: state.used / 2,
                    allocatorReserved: state.used
                )
            }
        }
    }
}

final class MemorySamplerTests: XCTestCase {
    /// Waits for the sampler to make at least one more read after this call.
    private func nextRead(_ sampler: MemorySampler) async {
        let seen = sampler.readCount
        await waitUntil("a read") { sampler.readCount > seen + 1 }
    }

    /// Overlapping windows each get the peaks of their own time: a spike before a window opened is not in
    /// it (A1111 mixes overlapping jobs' peaks).
    func testEachWindowSeesOnlyItsOwnPeaks() async throws {
        let device = ScriptedDevice()
        let sampler = MemorySampler(monitor: device.monitor, pollRate: 1_000)
        let gib: UInt64 = 1 << 30
        device.set(used: 2 * gib)
        let first = sampler.openWindow()
        await nextRead(sampler)
        device.set(used: 10 * gib)  // the spike, during the first window only
        await nextRead(sampler)
        device.set(used: 3 * gib)
        await nextRead(sampler)
        let second = sampler.openWindow()
        await nextRead(sampler)
        let firstStats = try first.close().get()
        device.set(used: 4 * gib)
        await nextRead(sampler)
        let secondStats = try second.close().get()

        XCTAssertEqual(firstStats.systemPeak, 10 * gib)
        XCTAssertEqual(firstStats.reservedPeak, 10 * gib)
        XCTAssertEqual(firstStats.activePeak, 5 * gib)
        XCTAssertEqual(secondStats.systemPeak, 4 * gib, "the spike happened before this window opened")
        XCTAssertEqual(secondStats.total, ScriptedDevice.total)
        XCTAssertGreaterThan(secondStats.samples, 0)
    }

    /// One read per tick whatever the number of windows, and the loop stops when none is open.
    func testReadsAreSharedAndTheLoopStopsWhenIdle() async throws {
        let device = ScriptedDevice()
        let sampler = MemorySampler(monitor: device.monitor, pollRate: 500)
        let windows = (0..<100).map { _ in sampler.openWindow() }
        await nextRead(sampler)
        await nextRead(sampler)
        let results = windows.map { $0.close() }
        await waitUntil("the loop to stop") { !sampler.isPolling }
        XCTAssertEqual(device.reads, sampler.readCount, "every read of the device is the loop's")
        let samples = try results.map { try $0.get().samples }
        XCTAssertLessThanOrEqual(samples.max() ?? 0, sampler.readCount + 1)
        XCTAssertGreaterThanOrEqual(samples.min() ?? 0, 2, "every window saw the reads while it was open")
        let stoppedAt = sampler.readCount
        await waitUntil { device.reads == stoppedAt }
        XCTAssertEqual(device.reads, stoppedAt)
    }

    /// A short window that closes before the loop's next read keeps the latest reading: never empty.
    func testAWindowShorterThanATickStillReports() async throws {
        let device = ScriptedDevice()
        let sampler = MemorySampler(monitor: device.monitor, pollRate: 0.5)  // a read every 2 s
        device.set(used: 1 << 30)
        let keepAlive = sampler.openWindow()
        await waitUntil { sampler.readCount == 1 }
        let short = sampler.openWindow()
        let stats = try short.close().get()
        XCTAssertEqual(stats.systemPeak, 1 << 30)
        XCTAssertEqual(stats.samples, 1)
        _ = keepAlive.close()
        sampler.stop()
    }

    func testAFailingDeviceNeverFailsTheCallAndSaysWhy() async throws {
        let device = ScriptedDevice()
        let sampler = MemorySampler(monitor: device.monitor, pollRate: 1_000)
        let queue = try CallQueue(configuration: .init(memorySampler: sampler))
        let call = wrapGPUCall(queue) { () -> Int in
            let before = sampler.readCount
            device.fail()
            await waitUntil { sampler.readCount > before + 1 }
            return 7
        }
        let response = await call()
        XCTAssertTrue(response.succeeded)
        XCTAssertEqual(response.outputs, 7)
        XCTAssertNil(response.stats.memory)
        XCTAssertEqual(
            response.stats.memoryUnavailableReason,
            "reading scripted device 0 (scripted GPU) failed: device fell off the bus"
        )
        XCTAssertTrue(
            response.stats.plainText.hasSuffix(
                "memory unavailable: reading scripted device 0 (scripted GPU) failed: device fell off the bus"))
    }

    func testPollRateZeroTurnsMemoryOff() {
        let device = ScriptedDevice()
        let sampler = MemorySampler(monitor: device.monitor, pollRate: 0)
        let window = sampler.openWindow()
        XCTAssertEqual(window.close(), .failure(.init(description: "memory polling is off (poll rate 0)")))
        XCTAssertEqual(device.reads, 0)
        XCTAssertFalse(sampler.isPolling)
    }

    func testStopEndsTheLoopForGood() async throws {
        let device = ScriptedDevice()
        let sampler = MemorySampler(monitor: device.monitor, pollRate: 1_000)
        let window = sampler.openWindow()
        await nextRead(sampler)
        sampler.stop()
        await waitUntil("the loop to end") { !sampler.isPolling }
        _ = window.close()
        let late = sampler.openWindow()
        XCTAssertEqual(late.close(), .failure(.init(description: "the memory sampler was stopped")))
    }

    func testRunStopsTheSamplerWhenCancelled() async throws {
        let device = ScriptedDevice()
        let sampler = MemorySampler(monitor: device.monitor, pollRate: 1_000)
        let service = Task { await sampler.run() }
        let window = sampler.openWindow()
        await nextRead(sampler)
        service.cancel()
        await service.value
        await waitUntil("the loop to end") { !sampler.isPolling }
        _ = window.close()
    }

    /// GPU jobs carry the peaks of their own run; concurrent jobs share the one loop.
    func testGPUJobsCarryTheirMemoryPeaks() async throws {
        let device = ScriptedDevice()
        device.set(used: 6 << 30)
        let sampler = MemorySampler(monitor: device.monitor, pollRate: 1_000)
        let queue = try CallQueue(configuration: .init(defaultLimit: 4, memorySampler: sampler))
        let call = wrapGPUCall(queue) { () -> Int in
            let before = sampler.readCount
            await waitUntil { sampler.readCount > before + 1 }
            return 1
        }
        let responses = await withTaskGroup(of: CallResponse<Int>.self) { group in
            for _ in 0..<4 { group.addTask { await call() } }
            return await group.reduce(into: []) { $0.append($1) }
        }
        for response in responses {
            let memory = try XCTUnwrap(response.stats.memory)
            XCTAssertEqual(memory.systemPeak, 6 << 30)
            XCTAssertEqual(memory.device.kind, "scripted")
            XCTAssertTrue(response.html.contains("<p class='vram'>"), response.html)
        }
        XCTAssertEqual(device.reads, sampler.readCount)
    }

    // MARK: Renderings against A1111's format

    func testVRAMLineMatchesA1111() {
        let mib: UInt64 = 1 << 20
        let stats = MemoryStats(
            device: DeviceIdentity(kind: "nvml", index: 0),
            activePeak: 2_468 * mib,
            reservedPeak: 3_257 * mib,
            systemPeak: 5_929 * mib,
            total: 6_144 * mib,
            samples: 10
        )
        XCTAssertEqual(
            stats.html,
            "<p class='vram'><abbr title='Active: peak amount of video memory used during generation (excluding cached data)'>A</abbr>: <span class='measurement'>2.41 GB</span>, <wbr><abbr title='Reserved: total amount of video memory allocated by the Torch library '>R</abbr>: <span class='measurement'>3.18 GB</span>, <wbr><abbr title='System: peak amount of video memory allocated by all running programs, out of total capacity'>Sys</abbr>: <span class='measurement'>5.8/6 GB</span> (96.5%)</p>"
        )
        XCTAssertEqual(stats.plainText, "A 2.41 GB, R 3.18 GB, Sys 5.8/6 GB (96.5%)")
        let perf = PerfStats(queued: .seconds(1), running: .milliseconds(23_000), memory: stats)
        XCTAssertEqual(
            perf.html,
            "<div class='performance'><p class='time'>Time taken: <wbr><span class='measurement'>23.0 sec.</span></p>"
                + stats.html + "</div>"
        )
    }

    /// Values are rounded up to whole MiB first, then formatted; an 81,090 MiB H100 reads "79.1895" (":g").
    func testRoundingUpAndTheGFormat() {
        let stats = MemoryStats(
            device: DeviceIdentity(kind: "nvml", index: 0),
            activePeak: 1,
            reservedPeak: (1 << 20) + 1,
            systemPeak: 0,
            total: 81_090 << 20,
            samples: 1
        )
        XCTAssertTrue(stats.html.contains(">0.00 GB<"), "1 byte rounds up to 1 MiB, 0.00 GB")
        XCTAssertTrue(stats.html.contains(">0.00 GB</span>, <wbr><abbr title='Reserved"), stats.html)
        XCTAssertTrue(stats.html.contains(">0.0/79.1895 GB</span> (0.0%)"), stats.html)
        XCTAssertEqual(MemoryStats.mebibytes((1 << 20) + 1), 2)
        XCTAssertEqual(MemoryStats.mebibytes(1 << 20), 1)
        XCTAssertEqual(MemoryStats.mebibytes(0), 0)
    }

    func testStatsWithMemoryAreCodable() throws {
        let stats = PerfStats(
            queued: .seconds(1),
            running: .seconds(2),
            memory: MemoryStats(
                device: .init(kind: "nvml", index: 1, name: "H100", uuid: "GPU-1"), activePeak: 1, reservedPeak: 2,
                systemPeak: 3, total: 4, samples: 5)
        )
        XCTAssertEqual(try JSONDecoder().decode(PerfStats.self, from: JSONEncoder().encode(stats)), stats)
    }
}
