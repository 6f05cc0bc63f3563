import CallQueue
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import XCTest

@testable import ImageServerCore

/// The OpenAPI document beside the code (`Resources/openapi.json`, served at `/openapi.json`) names exactly the
/// routes the server has, with the answers they give. CI runs schemathesis against a live server as well.
final class OpenAPITests: XCTestCase {
    struct Document: Decodable {
        struct Operation: Decodable {
            var responses: [String: Response]
        }
        struct Response: Decodable {
            var content: [String: AnyCodable]?
        }
        struct AnyCodable: Decodable {}
        /// A path's operations (its shared `parameters` are not read here).
        struct PathItem: Decodable {
            var get, put, post, delete, patch: Operation?

            var byMethod: [(String, Operation?)] {
                [("GET", get), ("PUT", put), ("POST", post), ("DELETE", delete), ("PATCH", patch)]
            }
        }
        var openapi: String
        var paths: [String: PathItem]

        /// "METHOD /path/{id}" for each operation, as the router describes its routes too.
        var operations: [String: Operation] {
            var operations: [String: Operation] = [:]
            for (path, item) in paths {
                for case (let method, let operation?) in item.byMethod {
                    operations["\(method) \(path)"] = operation
                }
            }
            return operations
        }
    }

    static func document(_ client: some TestClientProtocol) async throws -> Document {
        let response = try await send(client, "/openapi.json", .get, session: nil)
        XCTAssertEqual(response.status, .ok)
        XCTAssertEqual(response.headers[.contentType], "application/json")
        return try JSONDecoder().decode(Document.self, from: Data(buffer: response.body))
    }

    func makeServer(testHooks: Bool = false) throws -> ImageServer {
        var options = ServerOptions()
        options.stepDuration = .seconds(3600)
        options.maxQueuedPerClient = 1
        options.testHooks = testHooks
        return try ImageServer(options: options)
    }

    /// Every route of a default start is in the document, and every operation in it is a route; the test
    /// hooks' routes, which only `--test-hooks` adds, are not.
    func testTheDocumentNamesEveryRouteAndNoOther() async throws {
        for testHooks in [false, true] {
            let server = try makeServer(testHooks: testHooks)
            let routes = Set(
                server.buildRouter().routes.map { route in
                    let path = "\(route.path)"
                    return "\(route.method) \(path.hasPrefix("/") ? path : "/" + path)"
                })
            try await Application(router: server.buildRouter()).test(.router) { client in
                let documented = Set(try await Self.document(client).operations.keys)
                let hooks = routes.filter { $0.contains("/debug/") }
                XCTAssertEqual(routes.subtracting(hooks), documented, "with test hooks: \(testHooks)")
                XCTAssertEqual(hooks.isEmpty, !testHooks)
            }
        }
    }

    /// What the routes answer is what the document says they answer: each status code a test reaches, with
    /// its content type, is listed for that operation.
    func testAnswersAreDocumented() async throws {
        let server = try makeServer()
        try await Application(router: server.buildRouter()).test(.router) { client in
            let operations = try await Self.document(client).operations
            func check(
                _ operation: String, _ response: TestResponse, file: StaticString = #filePath, line: UInt = #line
            ) {
                let code = String(response.status.code)
                guard let documented = operations[operation]?.responses[code] else {
                    return XCTFail(
                        "\(operation) answered \(code), which the document does not list", file: file, line: line)
                }
                let type = response.headers[.contentType] ?? "none"
                XCTAssertNotNil(documented.content?[type], "\(operation) \(code) as \(type)", file: file, line: line)
            }
            let first = try await submit(client, #"{"prompt": "runs"}"#)
            check("POST /jobs", first)
            let id = try taskID(first)
            check("POST /jobs", try await submit(client, #"{"prompt": "waits"}"#))
            check("POST /jobs", try await submit(client, #"{"prompt": "refused"}"#))  // 429
            check("POST /jobs", try await submit(client, #"{"prompt": ""}"#))  // 400
            check("POST /chat", try await post(client, "/chat", #"{"tokens": 3}"#))  // 400
            check("GET /jobs/{id}", try await send(client, "/jobs/\(id)", .get))
            check("GET /jobs/{id}", try await send(client, "/jobs/task(nope)", .get))  // 404
            check("GET /jobs/{id}/result", try await send(client, "/jobs/\(id)/result", .get))  // 409
            check("GET /jobs/{id}/preview", try await send(client, "/jobs/\(id)/preview", .get))  // 404, none yet
            check("GET /jobs/{id}/description", try await send(client, "/jobs/\(id)/description", .get))  // 404
            check("GET /queue", try await send(client, "/queue", .get))
            check("GET /metrics", try await send(client, "/metrics", .get))
            check("GET /", try await send(client, "/", .get))
            for live in server.queue.liveTasks {
                check("DELETE /jobs/{id}", try await send(client, "/jobs/\(live.id)", .delete))
            }
            _ = try await waitForEnd(server, id)
            check("GET /jobs/{id}/events", try await send(client, "/jobs/\(id)/events", .get))
            check("GET /jobs/{id}/result", try await send(client, "/jobs/\(id)/result", .get))  // 409: cancelled
        }
    }
}
