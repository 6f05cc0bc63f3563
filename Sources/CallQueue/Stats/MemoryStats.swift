/// A call's memory peaks on one device, over the call's own window, in bytes.
///
/// With an engine's allocator figures (a ``ClosureDeviceMonitor`` that fills them), active and reserved are
/// its peaks, as AUTOMATIC1111 reads PyTorch's. Without them they fall back to this process's own use on
/// the device, and then to the device's use.
public struct MemoryStats: Sendable, Hashable, Codable {
    /// The device.
    public var device: DeviceIdentity
    /// Peak of live allocations (A1111's "A").
    public var activePeak: UInt64
    /// Peak held by the allocator (A1111's "R").
    public var reservedPeak: UInt64
    /// Total minus the lowest free memory seen: the device-wide peak, every process included (A1111's "Sys").
    public var systemPeak: UInt64
    /// The device's capacity.
    public var total: UInt64
    /// How many device reads the window saw.
    public var samples: Int

    public init(
        device: DeviceIdentity, activePeak: UInt64, reservedPeak: UInt64, systemPeak: UInt64, total: UInt64,
        samples: Int
    ) {
        self.device = device
        self.activePeak = activePeak
        self.reservedPeak = reservedPeak
        self.systemPeak = systemPeak
        self.total = total
        self.samples = samples
    }

    /// Bytes to MiB, rounded up, as AUTOMATIC1111 does before formatting.
    static func mebibytes(_ bytes: UInt64) -> UInt64 {
        bytes / 1_048_576 + (bytes % 1_048_576 == 0 ? 0 : 1)
    }

    /// The system peak as a share of the total, in percent, from the rounded MiB figures.
    public var systemPercentage: Double {
        Double(Self.mebibytes(systemPeak)) / Double(max(Self.mebibytes(total), 1)) * 100
    }

    /// AUTOMATIC1111's VRAM line: `A: x.xx GB, R: x.xx GB, Sys: x.x/y GB (z.z%)`, each label with its tooltip.
    public var html: String {
        let active = Double(Self.mebibytes(activePeak)) / 1024
        let reserved = Double(Self.mebibytes(reservedPeak)) / 1024
        let system = Double(Self.mebibytes(systemPeak)) / 1024
        let capacity = Double(Self.mebibytes(total)) / 1024
        let textA =
            "<abbr title='Active: peak amount of video memory used during generation (excluding cached data)'>A</abbr>: "
            + "<span class='measurement'>\(cFormat("%.2f", active)) GB</span>"
        let textR =
            "<abbr title='Reserved: total amount of video memory allocated by the Torch library '>R</abbr>: "
            + "<span class='measurement'>\(cFormat("%.2f", reserved)) GB</span>"
        let textSys =
            "<abbr title='System: peak amount of video memory allocated by all running programs, out of total capacity'>Sys</abbr>: "
            + "<span class='measurement'>\(cFormat("%.1f", system))/\(cFormat("%g", capacity)) GB</span> "
            + "(\(cFormat("%.1f", systemPercentage))%)"
        return "<p class='vram'>\(textA), <wbr>\(textR), <wbr>\(textSys)</p>"
    }

    /// One line: `A 2.41 GB, R 3.18 GB, Sys 5.8/6 GB (96.5%)`.
    public var plainText: String {
        let active = Double(Self.mebibytes(activePeak)) / 1024
        let reserved = Double(Self.mebibytes(reservedPeak)) / 1024
        let system = Double(Self.mebibytes(systemPeak)) / 1024
        let capacity = Double(Self.mebibytes(total)) / 1024
        return "A \(cFormat("%.2f", active)) GB, R \(cFormat("%.2f", reserved)) GB, "
            + "Sys \(cFormat("%.1f", system))/\(cFormat("%g", capacity)) GB (\(cFormat("%.1f", systemPercentage))%)"
    }
}
