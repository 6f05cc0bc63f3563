import CNVML

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Reads an NVIDIA GPU's memory through NVML, loaded at run time.
///
/// Memory comes from `nvmlDeviceGetMemoryInfo_v2` (total, reserved, free, used, as nvidia-smi shows them);
/// on drivers without it, or that refuse it, from the v1 query, with `reserved` unknown. This process's
/// own use comes from the device's process list, best effort.
///
/// The monitor holds one NVML init reference for its lifetime; the library's last reference calls
/// `nvmlShutdown`.
public final class NVMLDeviceMonitor: DeviceMonitor, @unchecked Sendable {
    public let device: DeviceIdentity
    private let library: NVMLLibrary
    private let handle: nvmlDevice_t
    private let useVersion1 = LockedState(false)

    /// Opens NVML and the device.
    ///
    /// - Parameters:
    ///   - index: The device's index in NVML's order.
    ///   - libraryPath: The library to open; `nil` tries `libnvidia-ml.so.1`, then `libnvidia-ml.so`.
    /// - Throws: ``NVMLFailure``: library not found, function not found, driver not loaded, no such device,
    ///   or another NVML code.
    public init(index: Int = 0, libraryPath: String? = nil) throws {
        let library = try NVMLLibrary.open(path: libraryPath)
        try library.acquire()
        do {
            var count: UInt32 = 0
            try library.check(library.deviceCount(&count), "nvmlDeviceGetCount_v2")
            guard index >= 0 && index < Int(count) else {
                throw NVMLFailure.noDevice(index: index, deviceCount: Int(count))
            }
            var found: nvmlDevice_t?
            try library.check(library.handleByIndex(UInt32(index), &found), "nvmlDeviceGetHandleByIndex_v2")
            guard let found else {
                throw NVMLFailure.nvml(function: "nvmlDeviceGetHandleByIndex_v2", code: 999, message: "no handle")
            }
            let name = Self.string(from: library.name, device: found, capacity: Int(CNVML_DEVICE_NAME_BUFFER_SIZE))
            let uuid = Self.string(from: library.uuid, device: found, capacity: Int(CNVML_DEVICE_UUID_BUFFER_SIZE))
            self.library = library
            self.handle = found
            self.device = DeviceIdentity(kind: "nvml", index: index, name: name, uuid: uuid)
        } catch {
            library.release()
            throw error
        }
    }

    deinit {
        library.release()
    }

    /// How many devices NVML sees.
    ///
    /// - Parameter libraryPath: The library to open; `nil` tries the usual names.
    /// - Throws: ``NVMLFailure``, as ``init(index:libraryPath:)``.
    public static func deviceCount(libraryPath: String? = nil) throws -> Int {
        let library = try NVMLLibrary.open(path: libraryPath)
        try library.acquire()
        defer { library.release() }
        var count: UInt32 = 0
        try library.check(library.deviceCount(&count), "nvmlDeviceGetCount_v2")
        return Int(count)
    }

    /// The library that was opened.
    public var libraryPath: String { library.path }

    /// Which memory query answers: `"v2"`, or `"v1"` after the v2 query was missing or refused.
    public var memoryQueryVersion: String {
        useVersion1.withLock { $0 } || library.memoryV2 == nil ? "v1" : "v2"
    }

    public func readMemory() throws -> DeviceMemory {
        var memory = try readDeviceMemory()
        let pid = UInt32(getpid())
        memory.processUsed = (try? processes())?.first { $0.pid == pid }?.usedMemory
        return memory
    }

    private func readDeviceMemory() throws -> DeviceMemory {
        if !useVersion1.withLock({ $0 }), let queryV2 = library.memoryV2 {
            var info = nvmlMemory_v2_t()
            info.version = cnvml_memory_v2_version()
            let code = queryV2(handle, &info)
            if code == 0 {
                return DeviceMemory(total: info.total, free: info.free, used: info.used, reserved: info.reserved)
            }
            // Not supported, not found, or a version the driver does not know: use v1 from now on.
            guard code == 3 || code == 13 || code == 25 else {
                throw library.failure(code, "nvmlDeviceGetMemoryInfo_v2")
            }
            useVersion1.withLock { $0 = true }
        }
        guard let queryV1 = library.memoryV1 else { throw NVMLFailure.functionNotFound("nvmlDeviceGetMemoryInfo") }
        var info = nvmlMemory_t()
        try library.check(queryV1(handle, &info), "nvmlDeviceGetMemoryInfo")
        return DeviceMemory(total: info.total, free: info.free, used: info.used)
    }

    /// A process using the GPU for compute, and its memory where the driver reports it.
    public struct Process: Sendable, Hashable {
        public var pid: UInt32
        public var usedMemory: UInt64?
    }

    /// The processes computing on the device (`nvmlDeviceGetComputeRunningProcesses_v3`), asking again
    /// with a larger buffer while the list grows between the size query and the fetch.
    public func processes() throws -> [Process] {
        guard let list = library.processes else {
            throw NVMLFailure.functionNotFound("nvmlDeviceGetComputeRunningProcesses_v3")
        }
        var count: UInt32 = 0
        var code = list(handle, &count, nil)
        for _ in 0..<4 {
            if code == 0 && count == 0 { return [] }
            guard code == Int32(CNVML_ERROR_INSUFFICIENT_SIZE) || code == 0 else {
                throw library.failure(code, "nvmlDeviceGetComputeRunningProcesses_v3")
            }
            var returned = count + 4
            var infos = [nvmlProcessInfo_t](repeating: nvmlProcessInfo_t(), count: Int(returned))
            code = list(handle, &returned, &infos)
            if code == 0 {
                return infos.prefix(Int(returned)).map {
                    Process(pid: $0.pid, usedMemory: $0.usedGpuMemory == UInt64.max ? nil : $0.usedGpuMemory)
                }
            }
            count = returned
        }
        throw library.failure(code, "nvmlDeviceGetComputeRunningProcesses_v3")
    }

    private static func string(
        from function: ((nvmlDevice_t?, UnsafeMutablePointer<CChar>?, UInt32) -> nvmlReturn_t)?,
        device: nvmlDevice_t,
        capacity: Int
    ) -> String? {
        guard let function else { return nil }
        var buffer = [CChar](repeating: 0, count: capacity)
        guard function(device, &buffer, UInt32(capacity)) == 0 else { return nil }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
