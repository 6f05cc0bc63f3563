import CallQueue
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import XCTest

@testable import ImageServerCore

/// What a stranger can do to another client's jobs: nothing, not even learn that an id exists.
final class SecurityTests: XCTestCase {
    func makeServer(testHooks: Bool = false, maxQueuedPerClient: Int = 4) throws -> ImageServer {
        var options = ServerOptions()
        options.stepDuration = .seconds(3600)
        options.tokenDuration = .zero
        options.positionUpdateInterval = .zero
        options.maxQueuedPerClient = maxQueuedPerClient
        options.testHooks = testHooks
        return try ImageServer(options: options)
    }

    func application(_ server: ImageServer) -> some ApplicationProtocol {
        Application(router: server.buildRouter(), configuration: .init(address: .hostname("127.0.0.1", port: 0)))
    }

    static let owner = sessionToken(1)
    static let stranger = sessionToken(2)

    /// Every route about a job answers a stranger, and a client with no session, exactly what it answers for an
    /// id nobody has: 404 with the same body; the job is untouched.
    func testAnotherClientCannotReadFollowFetchOrCancelAJob() async throws {
        let server = try makeServer()
        try await application(server).test(.router) { client in
            let running = try taskID(try await submit(client, #"{"prompt": "mine"}"#, session: Self.owner))
            let routes: [(String, HTTPRequest.Method)] = [
                ("", .get), ("/events", .get), ("/result", .get), ("/preview", .get), ("/description", .get),
                ("", .delete),
            ]
            for (suffix, method) in routes {
                let unknown = try await send(client, "/jobs/task(nope)\(suffix)", method, session: Self.stranger)
                XCTAssertEqual(unknown.status, .notFound, "\(method) \(suffix) of an unknown id")
                let expected = String(buffer: unknown.body).replacingOccurrences(of: "task(nope)", with: "\(running)")
                for session in [Self.stranger, nil] {
                    let response = try await send(client, "/jobs/\(running)\(suffix)", method, session: session)
                    XCTAssertEqual(response.status, .notFound, "\(method) \(suffix) by \(session ?? "no session")")
                    XCTAssertEqual(String(buffer: response.body), expected, "the same answer as for an unknown id")
                }
            }
            XCTAssertTrue(
                try server.queue.status(of: running).state.running != nil, "the stranger's cancel did nothing")
            let mine = try await send(client, "/jobs/\(running)", .get, session: Self.owner)
            XCTAssertEqual(mine.status, .ok)
            XCTAssertFalse(String(buffer: mine.body).contains(Self.owner), "a status never carries the session")
            let cancel = try await send(client, "/jobs/\(running)", .delete, session: Self.owner)
            XCTAssertEqual(cancel.status, .accepted)
        }
    }

    /// `GET /queue` gives counts to everyone and each client its own jobs; no other client's id.
    func testTheQueueRouteLeaksNoIDs() async throws {
        let server = try makeServer()
        try await application(server).test(.router) { client in
            let running = try taskID(try await submit(client, #"{"prompt": "runs"}"#, session: Self.owner))
            let waiting = try taskID(try await submit(client, #"{"prompt": "waits"}"#, session: Self.owner))
            let strangers = String(buffer: try await send(client, "/queue", .get, session: Self.stranger).body)
            let anonymous = String(buffer: try await send(client, "/queue", .get, session: nil).body)
            for report in [strangers, anonymous] {
                XCTAssertFalse(report.contains(running.rawValue), report)
                XCTAssertFalse(report.contains(waiting.rawValue), report)
                XCTAssertTrue(report.contains(#""runningCount":1"#), report)
                XCTAssertTrue(report.contains(#""waiting":1"#), report)
            }
            let owners = try JSONDecoder().decode(
                OwnJobs.self, from: Data(buffer: try await send(client, "/queue", .get, session: Self.owner).body))
            XCTAssertEqual(Set(owners.yourJobs), [running.rawValue, waiting.rawValue])
            for id in [waiting, running] { try await send(client, "/jobs/\(id)", .delete, session: Self.owner) }
        }
    }

    struct OwnJobs: Decodable {
        var yourJobs: [String]
    }

    /// A default start has no test hooks: no debug routes, and no client-chosen step time.
    func testNoTestHooksByDefault() async throws {
        let server = try makeServer()
        try await application(server).test(.router) { client in
            for (path, method) in [
                ("/debug/hold", HTTPRequest.Method.post), ("/debug/release", .post), ("/debug/reset", .post),
                ("/debug/stats", .get),
            ] {
                let response = try await send(client, path, method)
                XCTAssertEqual(response.status, .notFound, path)
            }
            let slow = try await submit(client, #"{"prompt": "slow", "steps": 150, "step_ms": 60000}"#)
            XCTAssertEqual(slow.status, .badRequest)
            XCTAssertTrue(String(buffer: slow.body).contains("--test-hooks"), String(buffer: slow.body))
        }
        XCTAssertTrue(server.queue.liveTasks.isEmpty)
    }

    func testTestHooksExistWhenAskedFor() async throws {
        let server = try makeServer(testHooks: true)
        try await application(server).test(.router) { client in
            let hold = try await send(client, "/debug/hold", .post)
            XCTAssertEqual(hold.status, .ok)
            let release = try await send(client, "/debug/release", .post)
            XCTAssertEqual(release.status, .ok)
            let quick = try await submit(client, #"{"prompt": "quick", "steps": 2, "step_ms": 0}"#)
            XCTAssertEqual(quick.status, .accepted)
            _ = try await waitForEnd(server, try taskID(quick))
        }
    }

    /// One client floods the line: past its cap it gets 429 with `Retry-After` and a JSON error, and another
    /// client's first job goes ahead of the flood, next after the running job.
    func testAFloodIs429AndAnotherClientIsServedNext() async throws {
        let server = try makeServer(maxQueuedPerClient: 3)
        try await application(server).test(.router) { client in
            var flood: [TaskID] = []
            for index in 0..<4 {  // one runs, three wait
                flood.append(
                    try taskID(try await submit(client, #"{"prompt": "flood \#(index)"}"#, session: Self.owner)))
            }
            let refused = try await submit(client, #"{"prompt": "one too many"}"#, session: Self.owner)
            XCTAssertEqual(refused.status, .tooManyRequests)
            let retryAfter = try XCTUnwrap(refused.headers[.retryAfter].flatMap { Int($0) }, "Retry-After in seconds")
            XCTAssertGreaterThan(retryAfter, 0)
            let error = try JSONDecoder().decode([String: CallQueueError].self, from: Data(buffer: refused.body))
            XCTAssertEqual(error["error"]?.code, .tooManyQueued)
            XCTAssertFalse(String(buffer: refused.body).contains(Self.owner), "the error names no session")

            let other = try taskID(try await submit(client, #"{"prompt": "first of another"}"#, session: Self.stranger))
            XCTAssertEqual(try server.queue.status(of: other).state.queued?.position, 0, "next, ahead of the flood")
            try await send(client, "/jobs/\(flood[0])", .delete, session: Self.owner)
            let started = try await Self.nextStarted(server, among: flood.dropFirst() + [other])
            XCTAssertEqual(started, other)
            for id in flood + [other] {
                try await send(client, "/jobs/\(id)", .delete, session: id == other ? Self.stranger : Self.owner)
            }
        }
        XCTAssertLessThanOrEqual(server.gpu.mostRunningAtOnce, 1)
    }

    /// Oversized and malformed bodies get 400 saying what is wrong, and register nothing.
    func testOversizedAndMalformedInputIs400() async throws {
        let server = try makeServer()
        try await application(server).test(.router) { client in
            let huge = #"{"prompt": ""# + String(repeating: "x", count: 70_000) + #""}"#
            for (path, body) in [
                ("/jobs", huge), ("/chat", huge), ("/jobs", #"{"prompt": "\#(String(repeating: "y", count: 1_001))"}"#),
                ("/jobs", #"{"prompt": "x", "steps": 151}"#), ("/chat", #"{"prompt": "x", "tokens": 1001}"#),
                ("/jobs", "{"), ("/chat", #"{"prompt": 7}"#),
            ] {
                let response = try await post(client, path, body)
                XCTAssertEqual(response.status, .badRequest, "\(path) \(body.prefix(40))")
                XCTAssertTrue(String(buffer: response.body).contains(#""code":"badRequest""#))
            }
        }
        XCTAssertTrue(server.queue.liveTasks.isEmpty)
    }

    /// A client with no session is given one: an `HttpOnly`, `SameSite=Strict` cookie, and the same token in the
    /// 202 body; either one alone finds the job again.
    func testANewClientGetsASessionByCookieAndToken() async throws {
        let server = try makeServer()
        try await application(server).test(.router) { client in
            let response = try await submit(client, #"{"prompt": "new here"}"#, session: nil)
            XCTAssertEqual(response.status, .accepted)
            let cookie = try XCTUnwrap(response.headers[.setCookie])
            XCTAssertTrue(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), cookie)
            let answer = try JSONDecoder().decode([String: String].self, from: Data(buffer: response.body))
            let token = try XCTUnwrap(answer["owner_token"])
            XCTAssertTrue(cookie.hasPrefix("\(ClientSession.cookieName)=\(token);"), cookie)
            let id = try taskID(response)
            let byCookie = try await send(
                client, "/jobs/\(id)", .get, headers: [.cookie: "theme=dark; \(ClientSession.cookieName)=\(token)"],
                session: nil)
            XCTAssertEqual(byCookie.status, .ok)
            let byToken = try await send(client, "/jobs/\(id)", .get, session: token)
            XCTAssertEqual(byToken.status, .ok)
            let forged = try await send(
                client, "/jobs/\(id)", .get, headers: [.authorization: "Bearer ../../etc"], session: nil)
            XCTAssertEqual(forged.status, .notFound)
            try await send(client, "/jobs/\(id)", .delete, session: token)
        }
    }

    /// Follows the queue until one of `ids` runs; returns it.
    static func nextStarted(_ server: ImageServer, among ids: [TaskID]) async throws -> TaskID {
        while true {
            for id in ids where try server.queue.status(of: id).state.running != nil { return id }
            try await Task.sleep(for: .milliseconds(1))
        }
    }
}
