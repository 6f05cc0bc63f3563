import CNVML
import Foundation
import XCTest

@testable import CallQueue

/// The NVML backend against the fake libnvidia-ml: every failure reason, the v2-to-v1 fallback, the process
/// list retry, and init/shutdown balance. The fake keeps its state across tests of this process, so each
/// test resets it and releases every monitor it makes before it ends.
final class NVMLDeviceMonitorTests: XCTestCase {
    override func setUpWithError() throws {
        try FakeNVMLLibrary.requireBuilt()
        XCTAssertEqual(FakeNVMLLibrary.initBalance, 0, "a previous test left NVML initialized")
        FakeNVMLLibrary.reset()
    }

    private func failure(_ body: () throws -> Void, file: StaticString = #filePath, line: UInt = #line) -> NVMLFailure?
    {
        do {
            try body()
            XCTFail("expected an NVMLFailure", file: file, line: line)
            return nil
        } catch let failure as NVMLFailure {
            return failure
        } catch {
            XCTFail("expected an NVMLFailure, got \(error)", file: file, line: line)
            return nil
        }
    }

    func testMissingLibraryIsLibraryNotFound() {
        let reason = failure { _ = try NVMLDeviceMonitor(libraryPath: "/nonexistent/libnvidia-ml.so.1") }
        guard case .libraryNotFound(let tried, let message)? = reason else {
            return XCTFail("\(String(describing: reason))")
        }
        XCTAssertEqual(tried, ["/nonexistent/libnvidia-ml.so.1"])
        XCTAssertTrue(message.contains("nonexistent"), message)
    }

    func testLibraryWithoutNVMLIsFunctionNotFound() {
        // A library that opens but is not NVML.
        XCTAssertEqual(
            failure { _ = try NVMLDeviceMonitor(libraryPath: "libc.so.6") }, .functionNotFound("nvmlInit_v2"))
    }

    func testDriverNotLoaded() {
        FakeNVMLLibrary.setInitResult(9)
        XCTAssertEqual(
            failure { _ = try NVMLDeviceMonitor(libraryPath: FakeNVMLLibrary.path) },
            .driverNotLoaded(message: "Driver Not Loaded")
        )
        XCTAssertEqual(FakeNVMLLibrary.initBalance, 0)
    }

    func testOtherCodesCarryNVMLsMessage() {
        FakeNVMLLibrary.setInitResult(18)
        XCTAssertEqual(
            failure { _ = try NVMLDeviceMonitor(libraryPath: FakeNVMLLibrary.path) },
            .nvml(function: "nvmlInit_v2", code: 18, message: "RM has detected an NVML/RM version mismatch.")
        )
    }

    func testNoSuchDevice() {
        FakeNVMLLibrary.setDeviceCount(0)
        XCTAssertEqual(
            failure { _ = try NVMLDeviceMonitor(libraryPath: FakeNVMLLibrary.path) },
            .noDevice(index: 0, deviceCount: 0))
        FakeNVMLLibrary.setDeviceCount(2)
        XCTAssertEqual(
            failure { _ = try NVMLDeviceMonitor(index: 5, libraryPath: FakeNVMLLibrary.path) },
            .noDevice(index: 5, deviceCount: 2))
        XCTAssertEqual(FakeNVMLLibrary.initBalance, 0, "a failed open gives its init reference back")
    }

    func testIdentityAndV2MemoryWithValuesThatChangeBetweenReads() throws {
        let gib: UInt64 = 1 << 30
        FakeNVMLLibrary.scriptMemory(total: 80 * gib, reserved: gib / 2, used: [1 * gib, 5 * gib, 3 * gib])
        let monitor = try NVMLDeviceMonitor(libraryPath: FakeNVMLLibrary.path)
        XCTAssertEqual(
            monitor.device, DeviceIdentity(kind: "nvml", index: 0, name: "Fake NVIDIA H100 80GB HBM3", uuid: nil))
        XCTAssertEqual(monitor.memoryQueryVersion, "v2")
        let readings = try (0..<3).map { _ in try monitor.readMemory() }
        XCTAssertEqual(readings.map(\.used), [1 * gib, 5 * gib, 3 * gib])
        for memory in readings {
            XCTAssertEqual(memory.total, 80 * gib)
            XCTAssertEqual(memory.reserved, gib / 2)
            XCTAssertEqual(memory.reserved! + memory.free + memory.used, memory.total)
        }
    }

    func testRefusedV2FallsBackToV1() throws {
        for code: Int32 in [3, 13, 25] {
            FakeNVMLLibrary.reset()
            FakeNVMLLibrary.setMemoryV2Result(code)
            let monitor = try NVMLDeviceMonitor(libraryPath: FakeNVMLLibrary.path)
            let memory = try monitor.readMemory()
            XCTAssertEqual(monitor.memoryQueryVersion, "v1", "code \(code)")
            XCTAssertNil(memory.reserved)
            XCTAssertEqual(memory.free + memory.used, memory.total, "v1: used includes reserved")
        }
    }

    func testOtherV2ErrorsAreReported() throws {
        FakeNVMLLibrary.setMemoryV2Result(15)
        let monitor = try NVMLDeviceMonitor(libraryPath: FakeNVMLLibrary.path)
        XCTAssertEqual(
            failure { _ = try monitor.readMemory() },
            .nvml(function: "nvmlDeviceGetMemoryInfo_v2", code: 15, message: "Unknown Error")
        )
    }

    func testLegacyLibraryWithoutV2UsesV1() throws {
        let monitor = try NVMLDeviceMonitor(libraryPath: FakeNVMLLibrary.legacyPath)
        XCTAssertEqual(monitor.memoryQueryVersion, "v1")
        XCTAssertNil(monitor.device.name, "the legacy fake has no nvmlDeviceGetName")
        let memory = try monitor.readMemory()
        XCTAssertEqual(memory.total, 16 << 30)
        XCTAssertEqual(memory.used, 3 << 30)
        XCTAssertNil(memory.processUsed, "no process list in the legacy fake")
        XCTAssertThrowsError(try monitor.processes()) {
            XCTAssertEqual($0 as? NVMLFailure, .functionNotFound("nvmlDeviceGetComputeRunningProcesses_v3"))
        }
    }

    func testProcessListAndThisProcessesUse() throws {
        let me = UInt32(getpid())
        FakeNVMLLibrary.setProcesses([(4242, 100 << 20), (me, 700 << 20), (77, UInt64.max)])
        let monitor = try NVMLDeviceMonitor(libraryPath: FakeNVMLLibrary.path)
        let processes = try monitor.processes()
        XCTAssertEqual(processes.map(\.pid), [4242, me, 77])
        XCTAssertNil(processes[2].usedMemory, "NVML_VALUE_NOT_AVAILABLE reads as unknown")
        XCTAssertEqual(try monitor.readMemory().processUsed, 700 << 20)
    }

    /// The list grows between the size query and the fetch by more than the headroom: asked again.
    func testProcessListRetriesWhenItGrows() throws {
        FakeNVMLLibrary.setProcesses([(1, 1 << 20), (2, 1 << 20)])
        FakeNVMLLibrary.growProcessesOnce()
        let monitor = try NVMLDeviceMonitor(libraryPath: FakeNVMLLibrary.path)
        let before = FakeNVMLLibrary.processCalls
        let processes = try monitor.processes()
        XCTAssertEqual(processes.count, 12)
        XCTAssertEqual(FakeNVMLLibrary.processCalls - before, 3, "size query, a fetch that was too small, a fetch")
    }

    func testInitAndShutdownBalance() throws {
        do {
            let first = try NVMLDeviceMonitor(libraryPath: FakeNVMLLibrary.path)
            let second = try NVMLDeviceMonitor(libraryPath: FakeNVMLLibrary.path)
            XCTAssertEqual(FakeNVMLLibrary.initBalance, 1, "nvmlInit_v2 once for the library")
            XCTAssertEqual(try NVMLLibrary.open(path: FakeNVMLLibrary.path).referenceCount, 2)
            withExtendedLifetime((first, second)) {}
        }
        XCTAssertEqual(FakeNVMLLibrary.initBalance, 0, "nvmlShutdown when the last monitor goes")
        XCTAssertEqual(try NVMLLibrary.open(path: FakeNVMLLibrary.path).referenceCount, 0)
    }

    func testInitAndShutdownBalanceUnderConcurrency() async throws {
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<200 {
                group.addTask {
                    if let monitor = try? NVMLDeviceMonitor(libraryPath: FakeNVMLLibrary.path) {
                        _ = try? monitor.readMemory()
                    }
                }
            }
        }
        XCTAssertEqual(FakeNVMLLibrary.initBalance, 0)
    }

    /// The fake behaves like the real library before init: calls answer Uninitialized (1).
    func testFakeAnswersUninitializedBeforeInit() {
        let count = FakeNVMLLibrary.function("nvmlDeviceGetCount_v2", as: PFN_nvmlDeviceGetCount_v2.self)
        var devices: UInt32 = 0
        XCTAssertEqual(count(&devices), 1)
    }

    func testAutomaticSelectionSaysWhyItFellBack() throws {
        let fallback = DeviceMonitorSelection.automatic(nvmlLibraryPath: "/nonexistent/libnvidia-ml.so.1")
        XCTAssertEqual(fallback.monitor.device.kind, "system")
        guard case .libraryNotFound? = fallback.nvmlFailure else { return XCTFail("\(fallback)") }
        XCTAssertTrue(fallback.description.contains("NVML is not available"), fallback.description)

        let chosen = DeviceMonitorSelection.automatic(nvmlLibraryPath: FakeNVMLLibrary.path)
        XCTAssertEqual(chosen.monitor.device.kind, "nvml")
        XCTAssertNil(chosen.nvmlFailure)
    }

    func testSystemMemoryMonitorReadsTheHost() throws {
        #if os(Linux)
            let memory = try SystemMemoryMonitor().readMemory()
            XCTAssertGreaterThan(memory.total, 0)
            XCTAssertEqual(memory.free + memory.used, memory.total)
            XCTAssertGreaterThan(memory.processUsed ?? 0, 0)
        #else
            throw XCTSkip("reads /proc")
        #endif
    }
}
