/// Reads one device's memory: an NVIDIA GPU through NVML, the host's memory, or figures an engine knows
/// about its own allocator.
///
/// Reads must be thread-safe; a ``MemorySampler`` calls ``readMemory()`` from its polling task.
public protocol DeviceMonitor: Sendable {
    /// Which device this is.
    var device: DeviceIdentity { get }
    /// The device's memory now. Throws when the device cannot be read; samplers then report the memory
    /// part of their stats as unavailable, with the error's description as the reason.
    func readMemory() throws -> DeviceMemory
}

/// Which device a monitor reads.
public struct DeviceIdentity: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The backend: `"nvml"`, `"system"`, or what a custom monitor says.
    public var kind: String
    /// The device's index in its backend's numbering (NVML's order is not CUDA's: key by ``uuid``).
    public var index: Int
    /// The device's name, e.g. "NVIDIA H100 80GB HBM3", when known.
    public var name: String?
    /// The device's UUID, when known.
    public var uuid: String?

    public init(kind: String, index: Int, name: String? = nil, uuid: String? = nil) {
        self.kind = kind
        self.index = index
        self.name = name
        self.uuid = uuid
    }

    public var description: String {
        "\(kind) device \(index)" + (name.map { " (\($0))" } ?? "") + (uuid.map { " \($0)" } ?? "")
    }
}

/// One reading of a device's memory, in bytes.
public struct DeviceMemory: Sendable, Hashable, Codable {
    /// The device's capacity.
    public var total: UInt64
    /// Memory nobody holds.
    public var free: UInt64
    /// Memory allocated on the device, by every process.
    public var used: UInt64
    /// Memory the driver or firmware keeps for itself, where the backend tells (NVML's v2 memory query).
    public var reserved: UInt64?
    /// Memory this process holds on the device, where known.
    public var processUsed: UInt64?
    /// Bytes in live allocations of this process's allocator (PyTorch's "active"), when an engine reports it.
    public var allocatorActive: UInt64?
    /// Bytes this process's allocator holds from the device, cached blocks included (PyTorch's
    /// "reserved"), when an engine reports it.
    public var allocatorReserved: UInt64?

    public init(
        total: UInt64,
        free: UInt64,
        used: UInt64,
        reserved: UInt64? = nil,
        processUsed: UInt64? = nil,
        allocatorActive: UInt64? = nil,
        allocatorReserved: UInt64? = nil
    ) {
        self.total = total
        self.free = free
        self.used = used
        self.reserved = reserved
        self.processUsed = processUsed
        self.allocatorActive = allocatorActive
        self.allocatorReserved = allocatorReserved
    }
}

/// A monitor built from a closure: for tests, and for engines that know their own allocator's figures.
public struct ClosureDeviceMonitor: DeviceMonitor {
    public let device: DeviceIdentity
    private let read: @Sendable () throws -> DeviceMemory

    /// - Parameters:
    ///   - device: Which device the closure describes.
    ///   - read: Returns the memory now; may throw when it cannot tell.
    public init(device: DeviceIdentity, read: @escaping @Sendable () throws -> DeviceMemory) {
        self.device = device
        self.read = read
    }

    public func readMemory() throws -> DeviceMemory {
        try read()
    }
}
