import CNVML

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// An opened libnvidia-ml: its functions, looked up once by their versioned names, and a balanced count of
/// `nvmlInit_v2` calls.
///
/// Libraries are opened once per path and never closed, so function pointers taken from one stay valid
/// for the life of the process. NVML itself is thread-safe; our own init and shutdown are serialized under
/// one lock.
final class NVMLLibrary: @unchecked Sendable {
    /// Tried in this order when no path is given: the versioned name first, which driver packages and the
    /// NVIDIA container runtime always provide; the unversioned one is often missing, or a link-time stub.
    static let defaultCandidates = ["libnvidia-ml.so.1", "libnvidia-ml.so"]

    private static let opened = LockedState<[String: NVMLLibrary]>([:])

    let path: String
    let initialize: PFN_nvmlInit_v2
    let shutdown: PFN_nvmlShutdown
    let deviceCount: PFN_nvmlDeviceGetCount_v2
    let handleByIndex: PFN_nvmlDeviceGetHandleByIndex_v2
    let errorString: PFN_nvmlErrorString?
    let name: PFN_nvmlDeviceGetName?
    let uuid: PFN_nvmlDeviceGetUUID?
    let memoryV1: PFN_nvmlDeviceGetMemoryInfo?
    let memoryV2: PFN_nvmlDeviceGetMemoryInfo_v2?
    let processes: PFN_nvmlDeviceGetComputeRunningProcesses_v3?
    /// Our successful `nvmlInit_v2` calls not yet matched by `nvmlShutdown`.
    private let references = LockedState(0)

    /// Opens the library at `path`, or the first of ``defaultCandidates`` that opens.
    ///
    /// - Throws: ``NVMLFailure/libraryNotFound(tried:message:)`` when none opens;
    ///   ``NVMLFailure/functionNotFound(_:)`` when a required function is missing.
    static func open(path: String? = nil) throws -> NVMLLibrary {
        let candidates = path.map { [$0] } ?? defaultCandidates
        return try opened.withLock { opened in
            for candidate in candidates {
                if let library = opened[candidate] { return library }
            }
            var lastError = "no candidate"
            for candidate in candidates {
                guard let handle = dlopen(candidate, RTLD_NOW | RTLD_LOCAL) else {
                    lastError = dlerror().map { String(cString: $0) } ?? "dlopen failed"
                    continue
                }
                let library = try NVMLLibrary(path: candidate, handle: handle)
                opened[candidate] = library
                return library
            }
            throw NVMLFailure.libraryNotFound(tried: candidates, message: lastError)
        }
    }

    private init(path: String, handle: UnsafeMutableRawPointer) throws {
        func optional<F>(_ name: String, as type: F.Type) -> F? {
            dlsym(handle, name).map { unsafeBitCast($0, to: type) }
        }
        func required<F>(_ name: String, as type: F.Type) throws -> F {
            guard let function = optional(name, as: type) else { throw NVMLFailure.functionNotFound(name) }
            return function
        }
        self.path = path
        initialize = try required("nvmlInit_v2", as: PFN_nvmlInit_v2.self)
        shutdown = try required("nvmlShutdown", as: PFN_nvmlShutdown.self)
        deviceCount = try required("nvmlDeviceGetCount_v2", as: PFN_nvmlDeviceGetCount_v2.self)
        handleByIndex = try required("nvmlDeviceGetHandleByIndex_v2", as: PFN_nvmlDeviceGetHandleByIndex_v2.self)
        errorString = optional("nvmlErrorString", as: PFN_nvmlErrorString.self)
        name = optional("nvmlDeviceGetName", as: PFN_nvmlDeviceGetName.self)
        uuid = optional("nvmlDeviceGetUUID", as: PFN_nvmlDeviceGetUUID.self)
        memoryV1 = optional("nvmlDeviceGetMemoryInfo", as: PFN_nvmlDeviceGetMemoryInfo.self)
        memoryV2 = optional("nvmlDeviceGetMemoryInfo_v2", as: PFN_nvmlDeviceGetMemoryInfo_v2.self)
        processes = optional(
            "nvmlDeviceGetComputeRunningProcesses_v3",
            as: PFN_nvmlDeviceGetComputeRunningProcesses_v3.self
        )
    }

    /// Takes one init reference: the first calls `nvmlInit_v2`.
    func acquire() throws {
        try references.withLock { count in
            if count == 0 {
                try check(initialize(), "nvmlInit_v2")
            }
            count += 1
        }
    }

    /// Gives back one init reference: the last calls `nvmlShutdown`.
    func release() {
        references.withLock { count in
            guard count > 0 else { return }
            count -= 1
            if count == 0 { _ = shutdown() }
        }
    }

    /// Our init references, for tests.
    var referenceCount: Int { references.withLock { $0 } }

    /// Throws the failure for a non-zero NVML return code.
    func check(_ code: nvmlReturn_t, _ function: String) throws {
        guard code != 0 else { return }
        throw failure(code, function)
    }

    func failure(_ code: nvmlReturn_t, _ function: String) -> NVMLFailure {
        let message = errorString.flatMap { $0(code) }.map { String(cString: $0) } ?? NVMLFailure.builtInMessage(code)
        if code == 9 { return .driverNotLoaded(message: message) }
        return .nvml(function: function, code: code, message: message)
    }
}
