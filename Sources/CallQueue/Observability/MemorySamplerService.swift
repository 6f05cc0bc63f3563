#if ServiceLifecycle
    import ServiceLifecycle

    /// A ``MemorySampler`` as a swift-service-lifecycle `Service`: it runs until the service group shuts
    /// down, gracefully or by cancellation, then stops the sampler's polling for good. Available with the
    /// package trait `ServiceLifecycle`.
    ///
    /// ```swift
    /// let sampler = MemorySampler(monitor: DeviceMonitorSelection.automatic().monitor)
    /// let group = ServiceGroup(services: [app, MemorySamplerService(sampler: sampler)], logger: logger)
    /// ```
    public struct MemorySamplerService: Service {
        /// The sampler this service owns the lifetime of.
        public let sampler: MemorySampler

        public init(sampler: MemorySampler) {
            self.sampler = sampler
        }

        public func run() async throws {
            let sampler = sampler
            await cancelWhenGracefulShutdown { await sampler.run() }
        }
    }
#endif
