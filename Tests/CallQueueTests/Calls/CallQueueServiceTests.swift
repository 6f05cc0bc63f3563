#if ServiceLifecycle
    import CallQueueTestSupport
    import Foundation
    import Logging
    import ServiceLifecycle
    import ServiceLifecycleTestKit
    import XCTest

    @testable import CallQueue

    /// The queue as a swift-service-lifecycle `Service`: a graceful shutdown stops admitting, fails waiters
    /// with `.closed`, lets the running call finish, and ends the queue's run; SIGTERM to a `ServiceGroup`
    /// does the same.
    final class CallQueueServiceTests: XCTestCase {
        /// Stands for the HTTP server: it starts after the queue and, on a graceful shutdown, stops first.
        private struct Server: Service {
            let started: Gate

            func run() async throws {
                started.open()
                try await gracefulShutdown()
            }
        }

        /// A call running behind `gate` and one waiting behind it, on a limit-1 group "gpu".
        private func runningAndWaiting(
            on queue: CallQueue
        ) async throws -> (Gate, JobHandle<Int>, JobHandle<Int>) {
            let gate = Gate()
            let running = try queue.submit(id: "task(running)", group: "gpu") { _ in
                await gate.wait()
                return 1
            }
            await waitForStatus(queue, "task(running)") { $0.isRunning }
            let waiting = try queue.submit(id: "task(waiting)", group: "gpu") { _ in 2 }
            return (gate, running, waiting)
        }

        func testAGracefulShutdownDrainsTheQueue() async throws {
            let queue = try CallQueue(configuration: .init(groups: ["gpu": .init(limit: 1)]))
            let (gate, running, waiting) = try await runningAndWaiting(on: queue)
            await testGracefulShutdown { trigger in
                let service = Task { await queue.run() }
                trigger.triggerGracefulShutdown()
                await assertThrowsCallQueueError(.closed) { _ = try await waiting.value }
                gate.open()
                await service.value
            }
            let output = try await running.value
            XCTAssertEqual(output, 1)
            XCTAssertEqual(queue.scheduler.background.count, 0)
        }

        func testSIGTERMToAServiceGroupHandsTheRunningCallItsGracePeriod() async throws {
            let queue = try CallQueue(configuration: .init(groups: ["gpu": .init(limit: 1)]))
            let started = Gate()
            let group = ServiceGroup(
                configuration: .init(
                    services: [.init(service: queue), .init(service: Server(started: started))],
                    gracefulShutdownSignals: [.sigterm],
                    logger: Logger(label: "CallQueueServiceTests")))
            let (gate, running, waiting) = try await runningAndWaiting(on: queue)
            let groupRun = Task { try await group.run() }
            await started.wait()  // the group traps its signals before it starts a service
            kill(getpid(), SIGTERM)
            await assertThrowsCallQueueError(.closed) { _ = try await waiting.value }
            XCTAssertNotNil(try queue.status(of: "task(running)").state.running, "the running call goes on")
            gate.open()
            try await groupRun.value
            let output = try await running.value
            XCTAssertEqual(output, 1)
        }
    }
#endif
