import CallQueue
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import XCTest

@testable import ImageServerCore

/// `GET /metrics`: Prometheus' text format, fed by the library's observer, changing as jobs run.
final class MetricsTests: XCTestCase {
    /// The value of one series (`name{labels}`) in a scrape, or `nil` when the scrape has no such line.
    static func value(_ series: String, in scrape: String) -> Double? {
        for line in scrape.split(separator: "\n") where line.hasPrefix(series + " ") {
            return Double(line.dropFirst(series.count + 1))
        }
        return nil
    }

    /// Waits until the registry holds these values: the observer hears of a change just after the job's own
    /// readers do.
    static func waitForSeries(
        _ server: ImageServer, _ expected: [String: Double], file: StaticString = #filePath, line: UInt = #line
    ) async {
        await waitUntilTrue(file: file, line: line) {
            let now = String(decoding: server.metrics.render(), as: UTF8.self)
            return expected.allSatisfy { series, value in Self.value(series, in: now) == value }
        }
    }

    static func scrape(_ client: some TestClientProtocol) async throws -> String {
        let response = try await send(client, "/metrics", .get, session: nil)
        XCTAssertEqual(response.status, .ok)
        XCTAssertEqual(response.headers[.contentType], "text/plain; version=0.0.4; charset=utf-8")
        return String(buffer: response.body)
    }

    func testTheScrapeFollowsJobsRefusalsAndMemory() async throws {
        var options = ServerOptions()
        options.stepDuration = .seconds(3600)  // a job holds its slot until it is cancelled
        options.positionUpdateInterval = .zero
        options.maxQueuedPerClient = 1
        options.testHooks = true  // a job's own step time: the last one ends at once
        let server = try ImageServer(options: options)
        let app = Application(
            router: server.buildRouter(), configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await app.test(.router) { client in
            let running = try taskID(try await submit(client, #"{"prompt": "runs"}"#))
            await waitUntilTrue { (try? server.queue.status(of: running))?.state.running != nil }
            let waiting = try taskID(try await submit(client, #"{"prompt": "waits"}"#))
            let refused = try await submit(client, #"{"prompt": "one too many"}"#)
            XCTAssertEqual(refused.status, .tooManyRequests)
            await Self.waitForSeries(
                server, [#"call_queue_running{group="gpu"}"#: 1, #"call_queue_waiting{group="gpu"}"#: 1])

            let during = try await Self.scrape(client)
            XCTAssertEqual(Self.value(#"call_queue_running{group="gpu"}"#, in: during), 1, during)
            XCTAssertEqual(Self.value(#"call_queue_waiting{group="gpu"}"#, in: during), 1, during)
            XCTAssertEqual(Self.value(#"imageserver_refusals{code="tooManyQueued"}"#, in: during), 1, during)
            XCTAssertNil(
                Self.value(#"call_queue_run_duration_count{group="gpu"}"#, in: during), "nothing ran to its end")
            XCTAssertFalse(during.contains(running.rawValue) || during.contains(testSession), "no ids, no sessions")

            for id in [waiting, running] { try await send(client, "/jobs/\(id)", .delete) }
            for id in [waiting, running] { _ = try await waitForEnd(server, id) }
            let quick = try taskID(try await submit(client, #"{"prompt": "quick", "steps": 1, "step_ms": 0}"#))
            _ = try await waitForEnd(server, quick)
            await Self.waitForSeries(
                server,
                [#"call_queue_wait_duration_count{group="gpu"}"#: 3, #"call_queue_run_duration_count{group="gpu"}"#: 2])

            let after = try await Self.scrape(client)
            XCTAssertEqual(Self.value(#"call_queue_running{group="gpu"}"#, in: after), 0, after)
            XCTAssertEqual(Self.value(#"call_queue_waiting{group="gpu"}"#, in: after), 0, after)
            XCTAssertEqual(
                Self.value(#"call_queue_wait_duration_count{group="gpu"}"#, in: after), 3, "every job waited")
            XCTAssertEqual(
                Self.value(#"call_queue_run_duration_count{group="gpu"}"#, in: after), 2, "two ran, one never started")
            let memory = try XCTUnwrap(
                Self.value(#"call_queue_memory_peak_bytes{group="gpu",device="simulated-0"}"#, in: after), after)
            XCTAssertGreaterThanOrEqual(memory, Double(1 << 30), "at least the simulated weights")
        }
    }
}
