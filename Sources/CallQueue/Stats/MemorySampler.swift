/// Polls one device's memory for every call running on it: one loop, however many calls, each call seeing
/// the peaks of its own window.
///
/// The loop starts when the first window opens, reads the device at once and then every `1 / pollRate`
/// seconds, and stops when no window is open; ``stop()`` (or cancelling a ``run()``) ends it for good.
/// Device reads per second stay at the poll rate whatever the number of calls.
///
/// A window opened while the loop runs starts from the latest reading; one that closes before any reading
/// of its own keeps that reading, so even a very short call reports something. A device that fails to
/// read never fails a call: the windows open at the time report the memory as unavailable, with the reason.
public final class MemorySampler: Sendable {
    /// The device being read.
    public let monitor: any DeviceMonitor
    /// Reads per second; 0 turns memory statistics off.
    public let pollRate: Double

    private struct Peaks: Sendable {
        var active: UInt64 = 0
        var reserved: UInt64 = 0
        var lowestFree: UInt64 = .max
        var total: UInt64 = 0
        var samples = 0
        var failure: String?

        mutating func add(_ memory: DeviceMemory) {
            active = max(active, memory.allocatorActive ?? memory.processUsed ?? memory.used)
            reserved = max(reserved, memory.allocatorReserved ?? memory.processUsed ?? memory.used)
            lowestFree = min(lowestFree, memory.free)
            total = memory.total
            samples += 1
        }
    }

    private struct State: Sendable {
        var windows: [Int: Peaks] = [:]
        var nextWindow = 0
        var running = false
        var stopped = false
        var loop: Task<Void, Never>?
        var latest: DeviceMemory?
        var reads = 0
    }

    private let state = LockedState(State())

    /// - Parameters:
    ///   - monitor: The device to read.
    ///   - pollRate: Reads per second while any window is open (AUTOMATIC1111's default is 8); 0 turns
    ///     memory statistics off.
    public init(monitor: any DeviceMonitor, pollRate: Double = 8) {
        self.monitor = monitor
        self.pollRate = pollRate.isFinite ? max(0, pollRate) : 0
    }

    deinit {
        state.withLock { $0.loop }?.cancel()
    }

    /// One sampler per GPU that NVML sees, in device order, for ``CallQueue/Configuration/deviceSamplers``;
    /// one sampler of the host's memory where NVML is not available. See
    /// ``DeviceMonitorSelection/automaticForEachDevice(nvmlLibraryPath:)``.
    public static func forEachDevice(pollRate: Double = 8, nvmlLibraryPath: String? = nil) -> [MemorySampler] {
        DeviceMonitorSelection.automaticForEachDevice(nvmlLibraryPath: nvmlLibraryPath).map {
            MemorySampler(monitor: $0.monitor, pollRate: pollRate)
        }
    }

    /// A call's window on the device's memory.
    public struct Window: Sendable {
        fileprivate let id: Int
        fileprivate let sampler: MemorySampler

        /// Ends the window and returns its peaks, or why there are none.
        public func close() -> Result<MemoryStats, MemoryUnavailable> {
            sampler.close(id)
        }
    }

    /// Why a window has no memory figures.
    public struct MemoryUnavailable: Error, Sendable, Hashable, CustomStringConvertible {
        public var description: String
    }

    /// Opens a window; the loop starts if it is not running.
    public func openWindow() -> Window {
        let (id, start) = state.withLock { state -> (Int, Bool) in
            let id = state.nextWindow
            state.nextWindow += 1
            var peaks = Peaks()
            if state.running, let latest = state.latest { peaks.add(latest) }
            state.windows[id] = peaks
            let start = !state.running && !state.stopped && pollRate > 0
            if start { state.running = true }
            return (id, start)
        }
        if start {
            let loop = Task { await self.poll() }
            state.withLock { $0.loop = loop }
        }
        return Window(id: id, sampler: self)
    }

    /// Device reads made so far.
    public var readCount: Int { state.withLock { $0.reads } }

    /// Whether the polling loop is running.
    public var isPolling: Bool { state.withLock { $0.running } }

    /// Ends the loop for good (server shutdown); windows opened later report memory as unavailable.
    public func stop() {
        let loop = state.withLock { state -> Task<Void, Never>? in
            state.stopped = true
            return state.loop
        }
        loop?.cancel()
    }

    /// Runs until cancelled, then stops the sampler: for a service that owns the sampler's lifetime.
    public func run() async {
        await withTaskCancellationHandler {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(3600))
            }
        } onCancel: {
            self.stop()
        }
    }

    private func close(_ id: Int) -> Result<MemoryStats, MemoryUnavailable> {
        let (peaks, stopped) = state.withLock { state in (state.windows.removeValue(forKey: id), state.stopped) }
        guard pollRate > 0 else {
            return .failure(MemoryUnavailable(description: "memory polling is off (poll rate 0)"))
        }
        guard let peaks else { return .failure(MemoryUnavailable(description: "the window was already closed")) }
        if let failure = peaks.failure {
            return .failure(MemoryUnavailable(description: "reading \(monitor.device) failed: \(failure)"))
        }
        guard peaks.samples > 0 else {
            let reason = stopped ? "the memory sampler was stopped" : "no reading of \(monitor.device) yet"
            return .failure(MemoryUnavailable(description: reason))
        }
        return .success(
            MemoryStats(
                device: monitor.device,
                activePeak: peaks.active,
                reservedPeak: peaks.reserved,
                systemPeak: peaks.total - min(peaks.lowestFree, peaks.total),
                total: peaks.total,
                samples: peaks.samples
            )
        )
    }

    private func poll() async {
        let interval = Duration.seconds(1 / pollRate)
        while !Task.isCancelled {
            let reading = Result { try monitor.readMemory() }
            let keepGoing = state.withLock { state -> Bool in
                state.reads += 1
                for id in state.windows.keys {
                    switch reading {
                    case .success(let memory): state.windows[id]?.add(memory)
                    case .failure(let error): state.windows[id]?.failure = "\(error)"
                    }
                }
                if case .success(let memory) = reading { state.latest = memory }
                if state.windows.isEmpty || state.stopped {
                    state.running = false
                    state.loop = nil
                    return false
                }
                return true
            }
            guard keepGoing else { return }
            try? await Task.sleep(for: interval)
        }
        state.withLock { state in
            state.running = false
            state.loop = nil
        }
    }
}
