import XCTest

@testable import CallQueue

/// The lifecycle's rules as a value, without any concurrency: admission, grants and leaving the line.
final class LifecycleStateTests: XCTestCase {
    private func makeState(
        groups: [ConcurrencyGroupID: ConcurrencyGroupConfiguration] = [:], processWideLimit: Int? = nil
    ) throws -> LifecycleState {
        let configuration = try CallQueue.Configuration(
            groups: groups, processWideLimit: processWideLimit
        ).validated()
        var settings = configuration.lifecycleConfiguration.settings
        settings.keptIdleGroups = 0
        return LifecycleState(settings: settings, scheduling: configuration.scheduling)
    }

    private func admit(
        _ state: inout LifecycleState, _ id: TaskID, group: ConcurrencyGroupID
    ) throws -> LifecycleState.Admitted {
        var effects = LifecycleState.Effects()
        return try state.admit(group: group, weight: nil, task: (id, TaskControl()), now: .now, effects: &effects)
    }

    /// A waiter cancelled by id leaves its line before its caller finishes it; its undeclared group must
    /// outlive it, even when the last running call of the group ends in between.
    func testCancelledWaiterKeepsItsGroupUntilItFinishes() throws {
        var state = try makeState()
        guard case .granted(let running) = try admit(&state, "task(a)", group: "adhoc"),
            case .queued(let ticket) = try admit(&state, "task(b)", group: "adhoc")
        else { return XCTFail("a runs, b waits") }
        var effects = LifecycleState.Effects()
        XCTAssertTrue(
            state.removeWaiting(ticket: ticket, group: "adhoc", error: CancellationError(), effects: &effects))
        _ = state.finish("task(a)", outcome: .succeeded, result: nil, now: .now, effects: &effects)
        XCTAssertEqual(running.slot, 0)
        XCTAssertNotNil(state.groups["adhoc"], "task(b) is still live")
        XCTAssertNotNil(state.status(of: "task(b)", now: .now))
        _ = state.finish("task(b)", outcome: .cancelled, result: nil, now: .now, effects: &effects)
        XCTAssertNil(state.groups["adhoc"], "freed once nothing is left")
        XCTAssertEqual(state.early.count, 1, "the failure waits for b's caller to suspend and find it")
    }

    /// With a process-wide limit, the permit goes to the oldest waiting head across groups.
    func testProcessWideLimitServesTheOldestHeadAcrossGroups() throws {
        var state = try makeState(groups: ["a": .init(limit: 2), "b": .init(limit: 2)], processWideLimit: 1)
        guard case .granted(let first) = try admit(&state, "task(a1)", group: "a") else {
            return XCTFail("a1 starts at once")
        }
        _ = try admit(&state, "task(b1)", group: "b")
        _ = try admit(&state, "task(a2)", group: "a")
        XCTAssertEqual(state.status(of: "task(b1)", now: .now)?.state.queued?.heldBy, .processLimit)
        let a2 = try XCTUnwrap(state.status(of: "task(a2)", now: .now)?.state.queued)
        XCTAssertEqual(a2.heldBy, .processLimit)
        XCTAssertEqual(a2.position, 1, "b1 is ahead of it for the process-wide permit")
        XCTAssertEqual(first.slot, 0)
        var effects = LifecycleState.Effects()
        _ = state.finish("task(a1)", outcome: .succeeded, result: nil, now: .now, effects: &effects)
        XCTAssertNotNil(state.status(of: "task(b1)", now: .now)?.state.running, "b1 came before a2")
        XCTAssertNotNil(state.status(of: "task(a2)", now: .now)?.state.queued)
    }
}
