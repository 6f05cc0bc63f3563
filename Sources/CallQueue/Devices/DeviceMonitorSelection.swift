/// The monitor a server uses by default, and why: NVML when the library loads and the device answers a
/// memory read, else the host's memory with the reason NVML was not used.
public struct DeviceMonitorSelection: Sendable, CustomStringConvertible {
    /// The chosen monitor.
    public let monitor: any DeviceMonitor
    /// Why NVML is not in use; `nil` when it is.
    public let nvmlFailure: NVMLFailure?

    /// Chooses the monitor for GPU `deviceIndex`.
    ///
    /// - Parameters:
    ///   - deviceIndex: The GPU's index in NVML's order.
    ///   - nvmlLibraryPath: The NVML library to open; `nil` tries the usual names.
    public static func automatic(deviceIndex: Int = 0, nvmlLibraryPath: String? = nil) -> DeviceMonitorSelection {
        do {
            let nvml = try NVMLDeviceMonitor(index: deviceIndex, libraryPath: nvmlLibraryPath)
            _ = try nvml.readMemory()
            return DeviceMonitorSelection(monitor: nvml, nvmlFailure: nil)
        } catch let failure as NVMLFailure {
            return DeviceMonitorSelection(monitor: SystemMemoryMonitor(), nvmlFailure: failure)
        } catch {
            let failure = NVMLFailure.nvml(function: "readMemory", code: 999, message: "\(error)")
            return DeviceMonitorSelection(monitor: SystemMemoryMonitor(), nvmlFailure: failure)
        }
    }

    /// Chooses a monitor for every GPU NVML sees, in NVML's order: one entry per device, for
    /// ``CallQueue/Configuration/deviceSamplers``. Where NVML is not available (or sees no device), one entry:
    /// the host's memory, with the reason.
    public static func automaticForEachDevice(nvmlLibraryPath: String? = nil) -> [DeviceMonitorSelection] {
        let count: Int
        do {
            count = try NVMLDeviceMonitor.deviceCount(libraryPath: nvmlLibraryPath)
        } catch {
            return [automatic(deviceIndex: 0, nvmlLibraryPath: nvmlLibraryPath)]
        }
        guard count > 0 else { return [automatic(deviceIndex: 0, nvmlLibraryPath: nvmlLibraryPath)] }
        return (0..<count).map { automatic(deviceIndex: $0, nvmlLibraryPath: nvmlLibraryPath) }
    }

    public var description: String {
        if let nvmlFailure {
            return "\(monitor.device), because NVML is not available: \(nvmlFailure)"
        }
        return "\(monitor.device) through NVML"
    }
}
