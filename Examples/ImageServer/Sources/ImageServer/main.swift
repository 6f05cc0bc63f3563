import Foundation
import Hummingbird
import ImageServerCore

let options: ServerOptions
do {
    options = try ServerOptions.parse(Array(CommandLine.arguments.dropFirst()))
} catch {
    let message = "\(error)"
    FileHandle.standardError.write(
        Data(((message.isEmpty ? "" : "error: \(message)\n") + ServerOptions.usage + "\n").utf8))
    exit(message.isEmpty ? 0 : 2)
}
let server = try ImageServer(options: options)
print("ImageServer on http://\(options.host):\(options.port) with \(options.slots) GPU slot(s)")
if options.testHooks {
    print("test hooks ON (--test-hooks): /debug routes and a job's own step_ms; never expose this server")
}
try await server.buildApplication().runService()
