#if ServiceLifecycle
    import ServiceLifecycle
    import ServiceLifecycleTestKit
    import XCTest

    @testable import CallQueue

    final class MemorySamplerServiceTests: XCTestCase {
        func testGracefulShutdownStopsTheSampler() async throws {
            let device = ScriptedDevice()
            let sampler = MemorySampler(monitor: device.monitor, pollRate: 1_000)
            try await testGracefulShutdown { trigger in
                let service = Task { try await MemorySamplerService(sampler: sampler).run() }
                let window = sampler.openWindow()
                await waitUntil { sampler.readCount > 1 }
                trigger.triggerGracefulShutdown()
                try await service.value
                await waitUntil("the loop to end") { !sampler.isPolling }
                _ = window.close()
            }
            XCTAssertEqual(
                sampler.openWindow().close(),
                .failure(.init(description: "the memory sampler was stopped"))
            )
        }

        func testCancellationStopsTheSampler() async throws {
            let sampler = MemorySampler(monitor: ScriptedDevice().monitor, pollRate: 1_000)
            let service = Task { try await MemorySamplerService(sampler: sampler).run() }
            let window = sampler.openWindow()
            await waitUntil { sampler.readCount > 1 }
            service.cancel()
            try await service.value
            await waitUntil("the loop to end") { !sampler.isPolling }
            _ = window.close()
        }
    }
#endif
