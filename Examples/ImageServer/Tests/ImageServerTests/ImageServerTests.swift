import CallQueue
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Synchronization
import XCTest

@testable import ImageServerCore

final class ImageServerTests: XCTestCase {
    /// A server whose steps take `step` (a long step holds a slot until the job is cancelled).
    func makeServer(slots: Int = 1, maxQueue: Int = 100, step: Duration = .zero) throws -> ImageServer {
        var options = ServerOptions()
        options.slots = slots
        options.maxQueue = maxQueue
        options.stepDuration = step
        options.tokenDuration = .zero
        options.port = 0
        options.positionUpdateInterval = .zero
        return try ImageServer(options: options)
    }

    func application(_ server: ImageServer) -> some ApplicationProtocol {
        Application(router: server.buildRouter(), configuration: .init(address: .hostname("127.0.0.1", port: 0)))
    }

    func testSubmitAnswers202WithAnIdThenStatusResultAndPreview() async throws {
        let server = try makeServer()
        try await application(server).test(.router) { client in
            let response = try await submit(client, #"{"prompt": "a red fox", "steps": 3, "seed": 7}"#)
            XCTAssertEqual(response.status, .accepted)
            let id = try taskID(response)
            let final = try await waitForEnd(server, id)
            XCTAssertEqual(final?.state.finished?.outcome, .succeeded)

            let status = try await send(client, "/jobs/\(id)", .get)
            XCTAssertEqual(status.status, .ok)
            let decoded = try JSONDecoder().decode(TaskStatus.self, from: Data(buffer: status.body))
            XCTAssertEqual(decoded.state.name, "finished")

            for path in ["result", "preview"] {
                let image = try await send(client, "/jobs/\(id)/\(path)", .get)
                XCTAssertEqual(image.status, .ok)
                XCTAssertEqual(image.headers[.contentType], "image/png")
                XCTAssertEqual(
                    Array(image.body.readableBytesView.prefix(8)), [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
            }
            let description = try await send(client, "/jobs/\(id)/description", .get)
            XCTAssertEqual(description.status, .ok)
        }
    }

    func testBadBodiesAre400AndRegisterNothing() async throws {
        let server = try makeServer()
        try await application(server).test(.router) { client in
            for body in [
                "not json", #"{"steps": 3}"#, #"{"prompt": "   "}"#, #"{"prompt": "x", "steps": 0}"#,
                #"{"prompt": "x", "steps": 100000}"#, #"{"prompt": "x", "seed": -1}"#,
            ] {
                let response = try await submit(client, body)
                XCTAssertEqual(response.status, .badRequest, body)
                let text = String(buffer: response.body)
                XCTAssertTrue(text.contains(#""code":"badRequest""#), text)
            }
        }
        XCTAssertTrue(server.queue.liveTasks.isEmpty)
        XCTAssertEqual(server.queue.groups.first { $0.group == "gpu" }?.waiting, 0)
    }

    func testFullQueueIs503WithTheCodeAndCancelFreesIt() async throws {
        let server = try makeServer(slots: 1, maxQueue: 1, step: .seconds(3600))
        try await application(server).test(.router) { client in
            let running = try taskID(try await submit(client, #"{"prompt": "holds the GPU"}"#))
            let queued = try taskID(try await submit(client, #"{"prompt": "waits"}"#))
            XCTAssertEqual(try server.queue.status(of: queued).state.queued?.position, 0)
            let full = try await submit(client, #"{"prompt": "one too many"}"#)
            XCTAssertEqual(full.status, .serviceUnavailable)
            let error = try JSONDecoder().decode([String: CallQueueError].self, from: Data(buffer: full.body))
            XCTAssertEqual(error["error"]?.code, .queueFull)

            // Cancel the queued job, then the running one; the queued one never ran.
            let cancelQueued = try await send(client, "/jobs/\(queued)", .delete)
            XCTAssertEqual(cancelQueued.status, .accepted)
            let queuedEnd = try await waitForEnd(server, queued)
            XCTAssertEqual(queuedEnd?.state.finished?.outcome, .cancelled)
            XCTAssertEqual(queuedEnd?.state.finished?.started, false)
            let cancelRunning = try await send(client, "/jobs/\(running)", .delete)
            XCTAssertEqual(cancelRunning.status, .accepted)
            let runningEnd = try await waitForEnd(server, running)
            XCTAssertEqual(runningEnd?.state.finished?.outcome, .cancelled)
            XCTAssertEqual(server.gpu.mostRunningAtOnce, 1)

            let accepted = try await submit(client, #"{"prompt": "room again", "steps": 1}"#)
            XCTAssertEqual(accepted.status, .accepted)
            try await send(client, "/jobs/\(try taskID(accepted))", .delete)
        }
    }

    func testUnknownIdsAre404AndUnfinishedResultsAre409() async throws {
        let server = try makeServer(step: .seconds(3600))
        try await application(server).test(.router) { client in
            for (path, method) in [
                ("/jobs/task(nope)", HTTPRequest.Method.get), ("/jobs/task(nope)", .delete),
                ("/jobs/task(nope)/result", .get), ("/jobs/task(nope)/events", .get),
                ("/jobs/task(nope)/preview", .get),
            ] {
                let response = try await send(client, path, method)
                XCTAssertEqual(response.status, .notFound, "\(method) \(path)")
            }
            let id = try taskID(try await submit(client, #"{"prompt": "slow"}"#))
            let early = try await send(client, "/jobs/\(id)/result", .get)
            XCTAssertEqual(early.status, .conflict)
            try await send(client, "/jobs/\(id)", .delete)
            _ = try await waitForEnd(server, id)
        }
    }

    /// Over a real socket: the event stream's framing, its end after the finished status, and a client that
    /// comes back by id after the job ended gets the final status and the last preview's note.
    func testEventStreamFramingEndAndReconnectByID() async throws {
        let server = try makeServer(step: .milliseconds(1))
        try await application(server).test(.live) { client in
            let id = try taskID(try await submit(client, #"{"prompt": "streamed", "steps": 3}"#))
            let events = try await send(client, "/jobs/\(id)/events", .get)
            XCTAssertEqual(events.status, .ok)
            XCTAssertEqual(events.headers[.contentType], "text/event-stream")
            let frames = parseEvents(String(buffer: events.body))
            XCTAssertFalse(frames.isEmpty)
            var versions: [UInt64] = []
            var previewSteps: [Int] = []
            for frame in frames {
                switch frame.event {
                case "status":
                    versions.append(try JSONDecoder().decode(TaskStatus.self, from: Data(frame.data.utf8)).version)
                case "preview":
                    let note = try JSONDecoder().decode([String: Int].self, from: Data(frame.data.utf8))
                    previewSteps.append(try XCTUnwrap(note["step"]))
                default: XCTFail("an image job sends statuses and preview notes, not \(frame)")
                }
            }
            XCTAssertEqual(versions, versions.sorted(), "never backwards")
            XCTAssertEqual(previewSteps, previewSteps.sorted(), "previews never go backwards")
            XCTAssertEqual(previewSteps.last, 3, "the last preview is the last step's")
            let last = try XCTUnwrap(frames.last)
            XCTAssertEqual(last.event, "status")
            XCTAssertTrue(last.data.contains(#""state":"finished""#), last.data)

            let again = try await send(client, "/jobs/\(id)/events", .get)
            let replay = parseEvents(String(buffer: again.body))
            XCTAssertEqual(replay.map(\.event), ["preview", "status"])
            XCTAssertTrue(replay[1].data.contains(#""outcome":"succeeded""#))
        }
    }

    /// A chat call streams its tokens as server-sent events, each with its index as the event's id, in order,
    /// before the finished status; they add up to the call's result.
    func testChatStreamsEveryTokenInOrderThenTheResult() async throws {
        let server = try makeServer(step: .seconds(3600))
        try await application(server).test(.router) { client in
            // An image job holds the one GPU, so the chat waits in line until the stream is open.
            let holder = try taskID(try await submit(client, #"{"prompt": "holds the GPU"}"#))
            let chat = try taskID(try await post(client, "/chat", #"{"prompt": "tell me of foxes", "tokens": 40}"#))
            XCTAssertEqual(try server.queue.status(of: chat).state.queued?.position, 0)
            let stream = Task { try await send(client, "/jobs/\(chat)/events", .get) }
            await waitUntilTrue { server.openEventStreams == 1 }
            try await send(client, "/jobs/\(holder)", .delete)
            let frames = parseEvents(String(buffer: try await stream.value.body))
            let tokens = frames.filter { $0.event == "token" }
            XCTAssertEqual(tokens.map(\.id), (0..<40).map { String($0) })
            let text = try tokens.map { try JSONDecoder().decode(String.self, from: Data($0.data.utf8)) }.joined()
            XCTAssertEqual(frames.first?.event, "status", "queued first")
            XCTAssertEqual(frames.last?.event, "status")
            XCTAssertTrue(frames.last?.data.contains(#""outcome":"succeeded""#) ?? false)
            XCTAssertFalse(frames.contains { $0.event == "missed" })
            let result = try await send(client, "/jobs/\(chat)/result", .get)
            let answer = try JSONDecoder().decode([String: String].self, from: Data(buffer: result.body))
            XCTAssertEqual(answer["text"], text)
            XCTAssertTrue(text.hasPrefix("About \"tell me of foxes\":"), text)
        }
    }

    /// A client that reconnects with Last-Event-ID gets the tokens after that one, none twice, none lost.
    func testAReconnectWithLastEventIDResumesAfterThatToken() async throws {
        let atTen = GateAt(10)
        var options = ServerOptions()
        options.positionUpdateInterval = .zero
        options.tokenDuration = .zero
        let server = try ImageServer(options: options) { await atTen.pass($0) }
        try await application(server).test(.router) { client in
            let chat = try taskID(try await post(client, "/chat", #"{"prompt": "resume me", "tokens": 30}"#))
            await atTen.reached.wait()  // tokens 0 to 9 were emitted; the call waits before token 10
            let stream = Task {
                try await send(client, "/jobs/\(chat)/events", .get, headers: [HTTPField.Name("Last-Event-ID")!: "4"])
            }
            await waitUntilTrue { server.openEventStreams == 1 }
            atTen.open.open()
            let frames = parseEvents(String(buffer: try await stream.value.body))
            XCTAssertEqual(frames.filter { $0.event == "token" }.map(\.id), (5..<30).map { String($0) })
            XCTAssertFalse(frames.contains { $0.event == "missed" })
        }
    }

    func testBadChatBodiesAre400() async throws {
        let server = try makeServer()
        try await application(server).test(.router) { client in
            for body in [
                "[]", #"{"prompt": ""}"#, #"{"prompt": "x", "tokens": 0}"#, #"{"prompt": "x", "tokens": 5000}"#,
            ] {
                let response = try await post(client, "/chat", body)
                XCTAssertEqual(response.status, .badRequest, body)
            }
            let notJSON = String(buffer: try await post(client, "/chat", "[]").body)
            XCTAssertTrue(notJSON.contains("tell me of foxes"), "the 400 shows a good body: \(notJSON)")
        }
        XCTAssertTrue(server.queue.liveTasks.isEmpty)
    }

    /// Many jobs on two slots: never more than two bodies at once (counted inside the body), every job ends.
    func testNoMoreBodiesThanSlotsUnderLoad() async throws {
        let server = try makeServer(slots: 2, step: .milliseconds(1))
        try await application(server).test(.router) { client in
            var ids: [TaskID] = []
            for index in 0..<30 {
                let json = #"{"prompt": "job \#(index)", "steps": 2}"#
                ids.append(try taskID(try await submit(client, json, session: sessionToken(index))))
            }
            for id in ids { _ = try await waitForEnd(server, id) }
            let queue = try await send(client, "/queue", .get)
            let report = String(buffer: queue.body)
            XCTAssertTrue(report.contains(#""group":"gpu""#), report)
        }
        XCTAssertLessThanOrEqual(server.gpu.mostRunningAtOnce, 2)
        XCTAssertTrue(server.queue.liveTasks.isEmpty)
    }

    func testPageIsServed() async throws {
        let server = try makeServer()
        try await application(server).test(.router) { client in
            let page = try await send(client, "/", .get)
            XCTAssertEqual(page.status, .ok)
            XCTAssertTrue(String(buffer: page.body).contains("EventSource"))
        }
    }

    func testOptionsParseDurationsAndBounds() throws {
        XCTAssertEqual(try ServerOptions.parse(["--keep-finished", "10m"]).keepFinished, .seconds(600))
        XCTAssertEqual(try ServerOptions.parse(["--keep-finished", "90s"]).keepFinished, .seconds(90))
        XCTAssertEqual(try ServerOptions.parse(["--keep-finished", "2h"]).keepFinished, .seconds(7_200))
        XCTAssertEqual(try ServerOptions.parse(["--keep-finished", "45"]).keepFinished, .seconds(45))
        XCTAssertEqual(try ServerOptions.parse(["--result-mb", "3"]).resultBytes, 3 << 20)
        XCTAssertEqual(try ServerOptions.parse(["--idle-timeout", "2m"]).idleTimeout, .seconds(120))
        XCTAssertEqual(try ServerOptions.parse(["--max-streams-per-client", "3"]).maxStreamsPerClient, 3)
        XCTAssertFalse(try ServerOptions.parse([]).testHooks, "off by default")
        XCTAssertTrue(try ServerOptions.parse(["--test-hooks"]).testHooks)
        for bad in [
            ["--keep-finished", "10x"], ["--keep-finished", "-1m"], ["--keep-finished"],
            ["--max-queued-per-client", "0"], ["--idle-timeout", "0"], ["--max-streams-per-client", "0"],
        ] {
            XCTAssertThrowsError(try ServerOptions.parse(bad), "\(bad)") { XCTAssertTrue($0 is UsageError) }
        }
    }

    /// A finished job is kept by time, not by how many finished after it: 300 later jobs do not push it out.
    func testAFinishedJobIsFoundAfterManyOthers() async throws {
        let server = try makeServer()
        try await application(server).test(.router) { client in
            let first = try taskID(try await submit(client, #"{"prompt": "first", "steps": 1}"#))
            _ = try await waitForEnd(server, first)
            for index in 0..<300 {
                let id = try taskID(
                    try await submit(client, #"{"prompt": "later", "steps": 1}"#, session: sessionToken(index)))
                _ = try await waitForEnd(server, id)
            }
            let status = try await send(client, "/jobs/\(first)", .get)
            XCTAssertEqual(status.status, .ok)
            let image = try await send(client, "/jobs/\(first)/result", .get)
            XCTAssertEqual(image.headers[.contentType], "image/png")
        }
    }

    func testPNGEncoderChecksums() {
        XCTAssertEqual(PNG.crc32(Array("IEND".utf8)), 0xAE42_6082)
        XCTAssertEqual(PNG.adler32(Array("Wikipedia".utf8)), 0x11E6_0398)
        let png = PNG.encode(width: 2, height: 1, rgb: [255, 0, 0, 0, 0, 255])
        XCTAssertEqual(Array(png.suffix(12)), [0, 0, 0, 0, 0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82])
    }
}

/// The session every request of a test carries, unless it says otherwise.
let testSession = "0123456789abcdef0123456789abcdef"

/// A well-formed session token of its own for each `number`.
func sessionToken(_ number: Int) -> String {
    let hex = String(number, radix: 16)
    return String(repeating: "a", count: 32 - hex.count) + hex
}

/// A request with the test's session as a bearer token (or `session`'s; `nil`: none).
@discardableResult
func send(
    _ client: some TestClientProtocol, _ path: String, _ method: HTTPRequest.Method, headers: HTTPFields = [:],
    body: ByteBuffer? = nil, session: String? = testSession
) async throws -> TestResponse {
    var headers = headers
    if let session { headers[.authorization] = "Bearer \(session)" }
    return try await client.execute(uri: path, method: method, headers: headers, body: body)
}

func submit(
    _ client: some TestClientProtocol, _ json: String, session: String? = testSession
) async throws
    -> TestResponse
{
    try await post(client, "/jobs", json, session: session)
}

func taskID(_ response: TestResponse) throws -> TaskID {
    let answer = try JSONDecoder().decode([String: String].self, from: Data(buffer: response.body))
    return TaskID(try XCTUnwrap(answer["task_id"], "\(response.status): \(String(buffer: response.body))"))
}

/// Waits for the job to end by following its own update stream.
func waitForEnd(_ server: ImageServer, _ id: TaskID) async throws -> TaskStatus? {
    var last: TaskStatus?
    for await status in try server.queue.updates(of: id) { last = status }
    return last
}

func post(
    _ client: some TestClientProtocol, _ path: String, _ json: String, session: String? = testSession
)
    async throws -> TestResponse
{
    try await send(
        client, path, .post, headers: [.contentType: "application/json"], body: ByteBuffer(string: json),
        session: session)
}

/// The events of a server-sent-event stream: (event, id, data), comments left out.
func parseEvents(_ text: String) -> [(event: String, id: String?, data: String)] {
    text.components(separatedBy: "\n\n").compactMap { frame in
        var event = "message"
        var id: String?
        var data: [String] = []
        for line in frame.components(separatedBy: "\n") {
            if line.hasPrefix("event: ") { event = String(line.dropFirst(7)) }
            if line.hasPrefix("id: ") { id = String(line.dropFirst(4)) }
            if line.hasPrefix("data: ") { data.append(String(line.dropFirst(6))) }
        }
        return data.isEmpty ? nil : (event, id, data.joined(separator: "\n"))
    }
}

/// Waits until `condition` holds; fails the test instead of hanging it when it has not after two minutes (a
/// bound for a broken server, not a timing).
func waitUntilTrue(
    file: StaticString = #filePath, line: UInt = #line, _ condition: @Sendable () -> Bool
) async {
    let giveUp = ContinuousClock.now + .seconds(120)
    while !condition() {
        if ContinuousClock.now > giveUp { return XCTFail("gave up waiting", file: file, line: line) }
        try? await Task.sleep(for: .milliseconds(1))
    }
}

/// Holds the chat before token `index`: `reached` opens when it gets there, and it goes on once `open` opens.
final class GateAt: Sendable {
    let index: Int
    let reached = OpenOnce()
    let open = OpenOnce()

    init(_ index: Int) {
        self.index = index
    }

    func pass(_ token: Int) async {
        guard token == index else { return }
        reached.open()
        await open.wait()
    }
}
