import CallQueue
import Vapor

// The Vapor guide's code, compiled: `swift run --package-path Examples/VaporGuide` serves it on 127.0.0.1:8080.
var environment = try Environment.detect()
try LoggingSystem.bootstrap(from: &environment)
let app = try await Application.make(environment)
app.storage[CallQueueKey.self] = try CallQueue(
    configuration: .init(groups: ["gpu": .init(limit: 1, maxQueueSize: 100)]))
try routes(app)
try streamingRoutes(app)
try await app.execute()
try await app.asyncShutdown()
