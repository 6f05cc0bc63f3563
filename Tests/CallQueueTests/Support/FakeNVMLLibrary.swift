import Foundation
import XCTest

@testable import CallQueue

/// The fake libnvidia-ml that SwiftPM builds next to the test binary, opened by path and driven through
/// its control functions. Nothing links it.
enum FakeNVMLLibrary {
    /// The build folder holding the test binary, and so the fake's `.so` files.
    static var buildFolder: URL {
        URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
    }

    static var path: String { buildFolder.appendingPathComponent("libFakeNVML.so").path }
    static var legacyPath: String { buildFolder.appendingPathComponent("libFakeNVMLLegacy.so").path }

    /// Fails the test (rather than skipping it) when the fake was not built.
    static func requireBuilt(file: StaticString = #filePath, line: UInt = #line) throws {
        #if !os(Linux)
            throw XCTSkip("the fake NVML library is loaded from the Linux build folder")
        #endif
        guard FileManager.default.fileExists(atPath: path), FileManager.default.fileExists(atPath: legacyPath) else {
            XCTFail("the fake NVML libraries were not built at \(buildFolder.path)", file: file, line: line)
            throw CallQueueError(.invalidArgument, "fake NVML missing")
        }
    }

    // Written once, by the lazy initializer; only read after. A process-lifetime handle, never closed.
    nonisolated(unsafe) private static let handle: UnsafeMutableRawPointer = {
        guard let handle = dlopen(path, RTLD_NOW | RTLD_LOCAL) else {
            fatalError("cannot open \(path): \(String(cString: dlerror()))")
        }
        return handle
    }()

    static func function<F>(_ name: String, as type: F.Type) -> F {
        guard let symbol = dlsym(handle, name) else { fatalError("the fake has no \(name)") }
        return unsafeBitCast(symbol, to: type)
    }

    static func reset() {
        function("fake_nvml_reset", as: (@convention(c) () -> Void).self)()
    }

    static func setInitResult(_ code: Int32) {
        function("fake_nvml_set_init_result", as: (@convention(c) (Int32) -> Void).self)(code)
    }

    static func setDeviceCount(_ count: UInt32) {
        function("fake_nvml_set_device_count", as: (@convention(c) (UInt32) -> Void).self)(count)
    }

    static func setDeviceUsedOffset(_ index: UInt32, _ offset: UInt64) {
        function("fake_nvml_set_device_used_offset", as: (@convention(c) (UInt32, UInt64) -> Void).self)(
            index, offset)
    }

    static func setMemoryV2Result(_ code: Int32) {
        function("fake_nvml_set_memory_v2_result", as: (@convention(c) (Int32) -> Void).self)(code)
    }

    static func scriptMemory(total: UInt64, reserved: UInt64, used: [UInt64]) {
        let script = function(
            "fake_nvml_script_memory",
            as: (@convention(c) (UInt64, UInt64, UnsafePointer<UInt64>?, UInt32) -> Void).self
        )
        used.withUnsafeBufferPointer { script(total, reserved, $0.baseAddress, UInt32($0.count)) }
    }

    static func setProcesses(_ processes: [(pid: UInt32, used: UInt64)]) {
        let set = function(
            "fake_nvml_set_processes",
            as: (@convention(c) (UnsafePointer<UInt32>?, UnsafePointer<UInt64>?, UInt32) -> Void).self
        )
        let pids = processes.map(\.pid)
        let used = processes.map(\.used)
        pids.withUnsafeBufferPointer { pids in
            used.withUnsafeBufferPointer { used in set(pids.baseAddress, used.baseAddress, UInt32(processes.count)) }
        }
    }

    static func growProcessesOnce() {
        function("fake_nvml_grow_processes_once", as: (@convention(c) () -> Void).self)()
    }

    static var initBalance: Int32 {
        function("fake_nvml_init_balance", as: (@convention(c) () -> Int32).self)()
    }

    static var memoryReads: UInt64 {
        function("fake_nvml_memory_reads", as: (@convention(c) () -> UInt64).self)()
    }

    static var processCalls: UInt32 {
        function("fake_nvml_process_calls", as: (@convention(c) () -> UInt32).self)()
    }
}
