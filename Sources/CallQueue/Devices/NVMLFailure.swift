/// Why NVML could not be used: the reason a queue falls back to the system-memory monitor.
public enum NVMLFailure: Error, Sendable, Hashable, CustomStringConvertible {
    /// No candidate library could be opened; `message` is the loader's last error.
    case libraryNotFound(tried: [String], message: String)
    /// The library lacks a function this backend needs (by its versioned name).
    case functionNotFound(String)
    /// `nvmlInit_v2` answered that the NVIDIA kernel driver is not loaded.
    case driverNotLoaded(message: String)
    /// The device index is not among the devices NVML reports.
    case noDevice(index: Int, deviceCount: Int)
    /// Any other NVML error code, with NVML's message for it.
    case nvml(function: String, code: Int32, message: String)

    public var description: String {
        switch self {
        case .libraryNotFound(let tried, let message):
            return "NVML library not found (tried \(tried.joined(separator: ", "))): \(message)"
        case .functionNotFound(let name):
            return "NVML function not found: \(name)"
        case .driverNotLoaded(let message):
            return "NVIDIA driver not loaded: \(message)"
        case .noDevice(let index, let count):
            return "no NVML device \(index): the driver reports \(count) device\(count == 1 ? "" : "s")"
        case .nvml(let function, let code, let message):
            return "\(function) failed with NVML error \(code): \(message)"
        }
    }

    /// NVML's names for its codes, used before the library's own `nvmlErrorString` is available.
    static func builtInMessage(_ code: Int32) -> String {
        switch code {
        case 1: return "Uninitialized"
        case 2: return "Invalid Argument"
        case 3: return "Not Supported"
        case 4: return "Insufficient Permissions"
        case 6: return "Not Found"
        case 7: return "Insufficient Size"
        case 9: return "Driver Not Loaded"
        case 12: return "NVML Shared Library Not Found"
        case 13: return "Function Not Found"
        case 15: return "GPU is lost"
        case 18: return "RM has detected an NVML/RM version mismatch."
        case 25: return "Argument version mismatch"
        case 999: return "Unknown Error"
        default: return "NVML error \(code)"
        }
    }
}
