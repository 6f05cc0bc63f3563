import CallQueueTestSupport
import XCTest

@testable import CallQueue

/// Cluster-wide groups through the permit-source seam, with several replicas (queues) sharing one in-memory
/// cluster line: the queue's side of the contract, without a database.
final class ClusterGroupTests: XCTestCase {
    private func replica(_ name: String, of cluster: InMemoryCluster, slots: Int = 1) throws -> CallQueue {
        try CallQueue(
            configuration: .init(
                groups: ["gpu": .init(limit: .limited(slots))],
                positionUpdateInterval: .zero,
                permitSources: ["gpu": cluster.source(replica: name)]))
    }

    func testOneLineAcrossReplicasInArrivalOrder() async throws {
        let cluster = InMemoryCluster(slots: 1)
        let a = try replica("a", of: cluster)
        let b = try replica("b", of: cluster)
        let started = Recorder<(String, ClusterPermit?)>()
        let gates = (0..<4).map { _ in Gate() }
        func job(_ index: Int, on queue: CallQueue) throws -> JobHandle<Void> {
            try queue.submit(id: TaskID("job\(index)"), group: "gpu") { context in
                started.append(("job\(index)", context.permit))
                await gates[index].wait()
            }
        }
        let first = try job(0, on: a)
        await waitUntil("first running") { started.count == 1 }
        let second = try job(1, on: b)
        await waitUntil("second has its ticket") { cluster.waiting == 1 }
        let third = try job(2, on: a)
        await waitUntil("third has its ticket") { cluster.waiting == 2 }
        let fourth = try job(3, on: b)
        await waitUntil("fourth has its ticket") { cluster.waiting == 3 }

        // Positions and queue sizes are cluster-wide: the third call, on replica a, has the second (on b)
        // ahead of it.
        await waitForStatus(a, "job2") { $0.queued?.position == 1 && $0.queued?.queueSize == 3 }
        await waitForStatus(b, "job3") { $0.queued?.position == 2 && $0.queued?.queueSize == 3 }

        for (index, handle) in [first, second, third, fourth].enumerated() {
            gates[index].open()
            try await handle.value
            if index < 3 { await waitUntil("next started") { started.count == index + 2 } }
        }
        XCTAssertEqual(started.elements.map(\.0), ["job0", "job1", "job2", "job3"])
        let permits = started.elements.compactMap(\.1)
        XCTAssertEqual(permits.map(\.slot), [0, 0, 0, 0])
        XCTAssertEqual(permits.map(\.fence), permits.map(\.fence).sorted())
        XCTAssertEqual(Set(permits.map(\.fence)).count, 4, "every grant has a fencing number of its own")
        await waitUntil("all tickets given back") { cluster.holders == 0 && cluster.waiting == 0 }
        XCTAssertEqual(cluster.finished("job3")?.state.finished?.outcome, .succeeded)
    }

    func testETAsUseTheClusterWideRunTime() async throws {
        let cluster = InMemoryCluster(slots: 1)
        cluster.runTime.withLock { $0 = .seconds(40) }
        let a = try replica("a", of: cluster)
        let gate = Gate()
        let holder = try a.submit(id: "holder", group: "gpu") { _ in await gate.wait() }
        await waitForStatus(a, "holder") { $0.isRunning }
        let waiter = try a.submit(id: "waiter", group: "gpu") { _ in }
        // This process has no run time of its own yet (its prior is 10 s); the cluster says 40 s.
        await waitForStatus(a, "waiter") { ($0.queued?.eta ?? .zero) > .seconds(70) }
        let eta = try a.status(of: "waiter").state.queued?.eta ?? .zero
        XCTAssertLessThanOrEqual(eta, .seconds(80))
        gate.open()
        try await holder.value
        try await waiter.value
    }

    func testCancelWaitingByIdGivesItsTicketBack() async throws {
        let cluster = InMemoryCluster(slots: 1)
        let a = try replica("a", of: cluster)
        let gate = Gate()
        let running = try a.submit(id: "running", group: "gpu") { _ in await gate.wait() }
        await waitForStatus(a, "running") { $0.isRunning }
        let waiting = try a.submit(id: "waiting", group: "gpu") { _ in XCTFail("a cancelled call ran") }
        await waitUntil("waiting has its ticket") { cluster.waiting == 1 }
        XCTAssertTrue(try a.cancel("waiting"))
        await assertThrowsCancellation { try await waiting.value }
        await waitUntil("its ticket left the cluster line") { cluster.waiting == 0 }
        gate.open()
        try await running.value
        await waitUntil("the slot was given back") { cluster.holders == 0 }
    }

    func testCancelFromAnotherReplicaStopsTheCall() async throws {
        let cluster = InMemoryCluster(slots: 1)
        let a = try replica("a", of: cluster)
        let handle = try a.submit(id: "long", group: "gpu") { _ in
            try await Task.sleep(for: .seconds(3600))
        }
        await waitForStatus(a, "long") { $0.isRunning }
        XCTAssertTrue(cluster.requestCancel(of: "long"))
        await assertThrowsCancellation { try await handle.value }
        await waitUntil("the slot was given back") { cluster.holders == 0 }
        XCTAssertEqual(try a.status(of: "long").state.finished?.outcome, .cancelled)
    }

    func testLostLeaseFailsWaitingCallsAndStopsRunningOnes() async throws {
        let cluster = InMemoryCluster(slots: 1)
        let a = try replica("a", of: cluster)
        let b = try replica("b", of: cluster)
        let running = try a.submit(id: "holder", group: "gpu") { _ in
            try await Task.sleep(for: .seconds(3600))
        }
        await waitForStatus(a, "holder") { $0.isRunning }
        let waiting = try a.submit(id: "waiter", group: "gpu") { _ in XCTFail("a lost call ran") }
        let other = try b.submit(id: "other", group: "gpu") { context in context.permit?.fence }
        await waitUntil("both wait") { cluster.waiting == 2 }

        cluster.loseReplica("a")
        await assertThrowsCallQueueError(.leaseLost) { try await running.value }
        await assertThrowsCallQueueError(.leaseLost) { try await waiting.value }
        let fence = try await other.value
        XCTAssertEqual(fence, 2, "the next grant has a larger fencing number")
        if case .failed(let message) = try a.status(of: "holder").state.finished?.outcome {
            XCTAssertTrue(message.contains("lease"), message)
        } else {
            XCTFail("a call whose lease was lost is failed, not cancelled")
        }
    }

    func testAnUnreachableSourceFailsTheCallWithItsError() async throws {
        let cluster = InMemoryCluster(slots: 1)
        cluster.failEnqueues.withLock { $0 = CallQueueError(.unavailable, "database down") }
        let a = try replica("a", of: cluster)
        let handle = try a.submit(id: "x", group: "gpu") { _ in XCTFail("ran without a grant") }
        await assertThrowsCallQueueError(.unavailable) { try await handle.value }
        XCTAssertEqual(a.liveTasks.count, 0)
    }

    func testUntrackedCallsUseTheClusterToo() async throws {
        let cluster = InMemoryCluster(slots: 1)
        let a = try replica("a", of: cluster)
        let counter = HolderCounter()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<20 {
                group.addTask {
                    try await a.runQueued(group: "gpu") {
                        counter.enter()
                        await Task.yield()
                        counter.leave()
                    }
                }
            }
            try await group.waitForAll()
        }
        XCTAssertEqual(counter.most, 1)
        XCTAssertEqual(cluster.grantOrder.count, 20)
        await waitUntil("all given back") { cluster.holders == 0 }
    }

    func testAClusterGroupMustBeDeclaredWithALimitAndNoBudget() {
        let cluster = InMemoryCluster(slots: 1)
        for groups: [ConcurrencyGroupID: ConcurrencyGroupConfiguration] in [
            [:], ["gpu": .init(limit: .unlimited)], ["gpu": .init(limit: 1, budget: 10)],
        ] {
            XCTAssertThrowsError(
                try CallQueue(
                    configuration: .init(groups: groups, permitSources: ["gpu": cluster.source(replica: "a")]))
            ) { error in
                XCTAssertEqual((error as? CallQueueError)?.code, .invalidArgument)
            }
        }
    }

    /// Three replicas, two slots, calls that throw, get cancelled waiting or running, or run: every caller
    /// gets one outcome, never more than two bodies run, grants follow ticket order, and every ticket is
    /// given back.
    func testStressEveryCallOneOutcomeAndTheLimitHolds() async throws {
        let cluster = InMemoryCluster(slots: 2)
        let replicas = try ["a", "b", "c"].map { try replica($0, of: cluster, slots: 2) }
        let counter = HolderCounter()
        let outcomes = Recorder<String>()
        let count = stressIterations(600, minimum: 60)
        await withTaskGroup(of: Void.self) { group in
            for index in 0..<count {
                let queue = replicas[index % 3]
                let id = TaskID("t\(index)")
                group.addTask {
                    do {
                        let handle = try queue.submit(id: id, group: "gpu") { _ in
                            counter.enter()
                            defer { counter.leave() }
                            await Task.yield()
                            if index % 7 == 0 { throw CallQueueError(.invalidArgument, "bad input \(index)") }
                            try Task.checkCancellation()
                        }
                        if index % 5 == 0 { _ = handle.cancel() }
                        try await handle.value
                        outcomes.append("ok")
                    } catch is CancellationError {
                        outcomes.append("cancelled")
                    } catch {
                        outcomes.append("failed")
                    }
                }
            }
        }
        XCTAssertEqual(outcomes.count, count)
        XCTAssertLessThanOrEqual(counter.most, 2)
        XCTAssertLessThanOrEqual(cluster.mostHolders, 2)
        XCTAssertEqual(cluster.grantOrder, cluster.grantOrder.sorted(), "grants follow ticket order")
        await waitUntil("every ticket given back") { cluster.holders == 0 && cluster.waiting == 0 }
        for queue in replicas { XCTAssertEqual(queue.liveTasks.count, 0) }
    }

    /// A call whose cluster ticket is still on its way reads the place it will take at the back of the
    /// cluster-wide line, not its local place: its position does not jump once the source answers.
    func testAPositionDoesNotJumpWhenTheSourceAnswers() async throws {
        let cluster = InMemoryCluster(slots: 1)
        let a = try replica("a", of: cluster)
        let b = try replica("b", of: cluster)
        let gate = Gate()
        let holder = try b.submit(id: "b0", group: "gpu") { _ in await gate.wait() }
        await waitForStatus(b, "b0") { $0.isRunning }
        let bWaiting = try (1...2).map { index in try b.submit(id: TaskID("b\(index)"), group: "gpu") { _ in } }
        await waitUntil("b's calls are in the cluster line") { cluster.waiting == 2 }
        let first = try a.submit(id: "a1", group: "gpu") { _ in }
        await waitForStatus(a, "a1") { $0.queued?.position == 2 && $0.queued?.queueSize == 3 }

        let held = Gate()
        cluster.holdEnqueues.withLock { $0 = held }
        let second = try a.submit(id: "a2", group: "gpu") { _ in }
        let before = try XCTUnwrap(try second.status().state.queued)
        XCTAssertEqual(before.position, 3, "behind the three calls in the cluster-wide line, not 1 (its local place)")
        cluster.holdEnqueues.withLock { $0 = nil }
        held.open()
        await waitUntil("a2 has its ticket") { cluster.waiting == 4 }
        XCTAssertEqual(try second.status().state.queued?.position, 3)

        gate.open()
        try await holder.value
        for handle in bWaiting { try await handle.value }
        try await first.value
        try await second.value
    }
}
