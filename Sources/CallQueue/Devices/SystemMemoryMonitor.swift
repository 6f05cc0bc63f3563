#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Reads the host's memory, for servers without a GPU: total and available from `/proc/meminfo`, and this
/// process's resident size from `/proc/self/statm` as its own use. Linux only; elsewhere reads throw.
public struct SystemMemoryMonitor: DeviceMonitor {
    public let device = DeviceIdentity(kind: "system", index: 0, name: "host memory")

    public init() {}

    /// Why a read failed.
    public struct ReadError: Error, Sendable, Hashable, CustomStringConvertible {
        public var description: String
    }

    public func readMemory() throws -> DeviceMemory {
        let meminfo = try Self.readFile("/proc/meminfo")
        guard let total = Self.kilobytes("MemTotal", in: meminfo) else {
            throw ReadError(description: "no MemTotal in /proc/meminfo")
        }
        let available = Self.kilobytes("MemAvailable", in: meminfo) ?? Self.kilobytes("MemFree", in: meminfo) ?? 0
        let statm = try Self.readFile("/proc/self/statm").split(separator: " ")
        let pageSize = UInt64(sysconf(Int32(_SC_PAGESIZE)))
        let resident = statm.count > 1 ? UInt64(statm[1]).map { $0 * pageSize } : nil
        return DeviceMemory(
            total: total,
            free: min(available, total),
            used: total - min(available, total),
            processUsed: resident
        )
    }

    /// A `/proc/meminfo` line's value, converted from kB to bytes.
    static func kilobytes(_ key: String, in text: String) -> UInt64? {
        for line in text.split(separator: "\n") where line.hasPrefix(key + ":") {
            let fields = line.split(separator: " ")
            guard fields.count >= 2, let value = UInt64(fields[1]) else { return nil }
            return value * 1024
        }
        return nil
    }

    static func readFile(_ path: String) throws -> String {
        let descriptor = open(path, O_RDONLY)
        guard descriptor >= 0 else { throw ReadError(description: "cannot open \(path): errno \(errno)") }
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = read(descriptor, &chunk, chunk.count)
            if count < 0 { throw ReadError(description: "cannot read \(path): errno \(errno)") }
            if count == 0 { break }
            bytes += chunk.prefix(count)
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
