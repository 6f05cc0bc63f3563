import CallQueue
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import XCTest

@testable import ImageServerCore

#if canImport(Glibc)
    import Glibc
#endif

/// What a stranger can do to another client's jobs: nothing, not even learn that an id exists.
final class SecurityTests: XCTestCase {
    func makeServer(
        testHooks: Bool = false, maxQueuedPerClient: Int = 4, maxStreamsPerClient: Int = 8,
        idleTimeout: Duration = .seconds(30)
    ) throws -> ImageServer {
        var options = ServerOptions()
        options.maxStreamsPerClient = maxStreamsPerClient
        options.idleTimeout = idleTimeout
        options.port = 0
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
            let encoded = running.rawValue.replacingOccurrences(of: "(", with: "%28").replacingOccurrences(
                of: ")", with: "%29")
            let byEncodedID = try await send(client, "/jobs/\(encoded)", .get, session: Self.owner)
            XCTAssertEqual(byEncodedID.status, .ok, "a percent-encoded id names the same job")
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

    /// A client may hold `maxStreamsPerClient` event streams open; one more is 429 until one closes, and other
    /// clients are not counted against it. A stream's place comes back when it ends.
    func testEventStreamsPerClientAreCapped() async throws {
        let server = try makeServer(maxStreamsPerClient: 2)
        try await application(server).test(.router) { client in
            let mine = try taskID(try await submit(client, #"{"prompt": "watched"}"#, session: Self.owner))
            let theirs = try taskID(try await submit(client, #"{"prompt": "theirs"}"#, session: Self.stranger))
            async let first = send(client, "/jobs/\(mine)/events", .get, session: Self.owner)
            async let second = send(client, "/jobs/\(mine)/events", .get, session: Self.owner)
            async let another = send(client, "/jobs/\(theirs)/events", .get, session: Self.stranger)
            await waitUntilTrue { server.openEventStreams == 3 }
            let third = try await send(client, "/jobs/\(mine)/events", .get, session: Self.owner)
            XCTAssertEqual(third.status, .tooManyRequests)
            XCTAssertTrue(String(buffer: third.body).contains(#""code":"tooManyStreams""#), String(buffer: third.body))
            XCTAssertEqual(server.openEventStreams, 3, "a refused stream holds no place")
            for (id, session) in [(theirs, Self.stranger), (mine, Self.owner)] {
                try await send(client, "/jobs/\(id)", .delete, session: session)
            }
            for stream in [try await first, try await second, try await another] {
                XCTAssertEqual(stream.status, .ok)
                XCTAssertTrue(String(buffer: stream.body).contains(#""outcome":"cancelled""#))
            }
            await waitUntilTrue { server.openEventStreams == 0 }
            let again = try await send(client, "/jobs/\(mine)/events", .get, session: Self.owner)
            XCTAssertEqual(again.status, .ok, "the places came back")
        }
    }

    /// A connection that sends part of a request and stops, or nothing at all, is closed after the idle
    /// timeout: a slow client cannot hold a connection for ever.
    func testIdleAndSlowConnectionsAreClosed() async throws {
        let server = try makeServer(idleTimeout: .milliseconds(200))
        try await server.buildApplication().test(.live) { client in
            let port = try XCTUnwrap(client.port)
            let partial = "POST /jobs HTTP/1.1\r\nHost: localhost\r\nContent-Length: 40\r\n\r\n{\"prompt\": "
            for sent in [partial, ""] {
                let closed = try await RawConnection.closedByPeer(port: port, sending: sent)
                XCTAssertTrue(closed, "a connection that sent \(sent.count) bytes and stopped is closed")
            }
        }
        XCTAssertTrue(server.queue.liveTasks.isEmpty, "the partial request registered nothing")
    }

    /// Follows the queue until one of `ids` runs; returns it.
    static func nextStarted(_ server: ImageServer, among ids: [TaskID]) async throws -> TaskID {
        while true {
            for id in ids where try server.queue.status(of: id).state.running != nil { return id }
            try await Task.sleep(for: .milliseconds(1))
        }
    }
}

/// A plain TCP connection, for what an HTTP client library would not do: send part of a request and stop.
enum RawConnection {
    /// Connects to the loopback `port`, sends `text`, and waits for the server to close the connection:
    /// `true` when it did, `false` when it sent something or was still open after a minute (a bound that
    /// fails the test instead of hanging it, not a timing).
    static func closedByPeer(port: Int, sending text: String) async throws -> Bool {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(with: Result { try blockingClosedByPeer(port: port, sending: text) })
            }
        }
    }

    private static func blockingClosedByPeer(port: Int, sending text: String) throws -> Bool {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
        defer { close(socket) }
        var timeout = timeval(tv_sec: 60, tv_usec: 0)
        setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else { throw POSIXError(.init(rawValue: errno) ?? .ECONNREFUSED) }
        let bytes = Array(text.utf8)
        if !bytes.isEmpty { _ = send(socket, bytes, bytes.count, 0) }
        var buffer = [UInt8](repeating: 0, count: 1_024)
        return recv(socket, &buffer, buffer.count, 0) == 0
    }
}
