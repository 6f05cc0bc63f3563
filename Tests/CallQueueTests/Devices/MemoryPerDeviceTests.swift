import CallQueueTestSupport
import XCTest

@testable import CallQueue

/// Memory per device: a call's stats carry the peaks of the device its slot runs on, read through the fake
/// libnvidia-ml showing two GPUs with different readings.
final class MemoryPerDeviceTests: XCTestCase {
    override func setUpWithError() throws {
        try FakeNVMLLibrary.requireBuilt()
        FakeNVMLLibrary.reset()
    }

    override func tearDown() {
        FakeNVMLLibrary.reset()
    }

    /// Two calls on a two-slot group, one per GPU: each reports its own GPU, and GPU 1's extra 10 GiB.
    func testEachSlotReportsTheMemoryOfItsOwnDevice() async throws {
        FakeNVMLLibrary.setDeviceCount(2)
        FakeNVMLLibrary.scriptMemory(total: 80 << 30, reserved: 0, used: [4 << 30])
        FakeNVMLLibrary.setDeviceUsedOffset(1, 10 << 30)
        XCTAssertEqual(try NVMLDeviceMonitor.deviceCount(libraryPath: FakeNVMLLibrary.path), 2)
        let samplers = MemorySampler.forEachDevice(pollRate: 1_000, nvmlLibraryPath: FakeNVMLLibrary.path)
        XCTAssertEqual(samplers.map(\.monitor.device.index), [0, 1])
        defer { for sampler in samplers { sampler.stop() } }
        let queue = try CallQueue(
            configuration: .init(groups: ["gpu": .init(limit: 2)], deviceSamplers: samplers))
        let release = Gate()
        let started = HolderCounter()
        func call(_ id: TaskID) throws -> JobHandle<Int> {
            try queue.submit(id: id, group: "gpu") { context in
                started.enter()
                await release.wait()
                return context.slot
            }
        }
        let first = try call("task(first)")
        let second = try call("task(second)")
        await waitUntil("both run") { started.current == 2 }
        // Each device has been read while both windows were open.
        let reads = samplers.map(\.readCount)
        await waitUntil("each device read again") { zip(samplers, reads).allSatisfy { $0.readCount > $1 + 1 } }
        release.open()
        for handle in [first, second] {
            let response = await handle.response
            let slot = try XCTUnwrap(response.outputs)
            let memory = try XCTUnwrap(response.stats.memory, "slot \(slot)")
            XCTAssertEqual(memory.device.index, slot, "slot k runs on GPU k")
            XCTAssertEqual(memory.systemPeak, slot == 0 ? 4 << 30 : 14 << 30, "slot \(slot)")
        }
    }

    /// A group's `devices` maps its slots: both slots on GPU 1 here.
    func testAGroupsDevicesMapItsSlots() async throws {
        FakeNVMLLibrary.setDeviceCount(2)
        FakeNVMLLibrary.scriptMemory(total: 80 << 30, reserved: 0, used: [4 << 30])
        FakeNVMLLibrary.setDeviceUsedOffset(1, 10 << 30)
        let samplers = MemorySampler.forEachDevice(pollRate: 1_000, nvmlLibraryPath: FakeNVMLLibrary.path)
        defer { for sampler in samplers { sampler.stop() } }
        let queue = try CallQueue(
            configuration: .init(groups: ["gpu": .init(limit: 2, devices: [1])], deviceSamplers: samplers))
        let response = try await queue.submit(group: "gpu") { _ in
            let before = samplers[1].readCount
            await waitUntil { samplers[1].readCount > before + 1 }
        }.response
        XCTAssertEqual(response.stats.memory?.device.index, 1)
        XCTAssertEqual(response.stats.memory?.systemPeak, 14 << 30)
        XCTAssertEqual(samplers[0].readCount, 0, "GPU 0 is never read for this group")

        XCTAssertThrowsError(
            try CallQueue(
                configuration: .init(groups: ["gpu": .init(limit: 2, devices: [2])], deviceSamplers: samplers))
        ) { XCTAssertEqual(($0 as? CallQueueError)?.code, .invalidArgument) }
        XCTAssertEqual(ConcurrencyGroupConfiguration(devices: [0, 0, 1, 1]).device(ofSlot: 5, deviceCount: 2), 0)
        XCTAssertEqual(ConcurrencyGroupConfiguration().device(ofSlot: 3, deviceCount: 2), 1)
    }

    /// Without NVML, one sampler of the host's memory, with the reason.
    func testWithoutNVMLOneHostSampler() {
        let selections = DeviceMonitorSelection.automaticForEachDevice(
            nvmlLibraryPath: "/nonexistent/libnvidia-ml.so.1")
        XCTAssertEqual(selections.count, 1)
        XCTAssertNotNil(selections.first?.nvmlFailure)
    }
}
