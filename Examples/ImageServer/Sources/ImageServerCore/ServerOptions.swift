/// The server's settings, from the command line.
public struct ServerOptions: Sendable {
    /// Address to bind; loopback by default.
    public var host = "127.0.0.1"
    public var port = 8080
    /// GPU slots: calls of the "gpu" group running at once, one per simulated GPU.
    public var slots = 1
    /// Most jobs waiting for a GPU before `POST /jobs` answers 503.
    public var maxQueue = 100
    /// How long one step of the simulated model takes.
    public var stepDuration: Duration = .milliseconds(100)
    /// How long the simulated text model takes per token (`POST /chat`).
    public var tokenDuration: Duration = .milliseconds(30)
    /// Finished jobs (and their images) kept for `GET /jobs/:id` and `/result`.
    public var history = 256
    /// Server-sent-event heartbeat (a comment line) while a stream is idle.
    public var heartbeat: Duration = .seconds(15)
    /// Least time between two position updates to one event stream.
    public var positionUpdateInterval: Duration = .milliseconds(250)
    /// Least move worth an update, as a fraction of the place last sent: someone 2,000th in line hears again
    /// at 1,800th, while the last ten places are each sent. Thousands of waiting streams then cost the server
    /// little more than the few near the front.
    public var positionUpdateFraction = 0.1
    /// Most jobs one client may have waiting; more answer 429 with `Retry-After`. Clients are served in turn
    /// (fair share by session), so one client's flood holds another's first job back by one job at most.
    public var maxQueuedPerClient = 4
    /// The load test's and the browser test's hooks: the `/debug` routes and a job's own `step_ms`. Off by
    /// default: with them anyone could stall the GPU for everyone.
    public var testHooks = false

    public init() {}

    /// Parses `--host H --port N --slots N --max-queue N --max-queued-per-client N --step-ms N --token-ms N
    /// --history N --test-hooks`.
    public static func parse(_ arguments: [String]) throws -> ServerOptions {
        var options = ServerOptions()
        var remaining = arguments[...]
        func value(_ flag: String) throws -> String {
            guard let value = remaining.popFirst() else { throw UsageError("\(flag) needs a value") }
            return value
        }
        func number(_ flag: String, in range: ClosedRange<Int>) throws -> Int {
            let text = try value(flag)
            guard let number = Int(text), range.contains(number) else {
                throw UsageError(
                    "\(flag) takes a whole number in \(range.lowerBound)...\(range.upperBound), not '\(text)'")
            }
            return number
        }
        while let flag = remaining.popFirst() {
            switch flag {
            case "--host": options.host = try value(flag)
            case "--port": options.port = try number(flag, in: 0...65_535)
            case "--slots": options.slots = try number(flag, in: 1...64)
            case "--max-queue": options.maxQueue = try number(flag, in: 0...1_000_000)
            case "--step-ms": options.stepDuration = .milliseconds(try number(flag, in: 0...60_000))
            case "--token-ms": options.tokenDuration = .milliseconds(try number(flag, in: 0...60_000))
            case "--max-queued-per-client": options.maxQueuedPerClient = try number(flag, in: 1...1_000_000)
            case "--test-hooks": options.testHooks = true
            case "--history": options.history = try number(flag, in: 0...1_000_000)
            case "--help", "-h": throw UsageError("")
            default: throw UsageError("unknown option '\(flag)'")
            }
        }
        return options
    }

    public static let usage = """
        usage: ImageServer [--host 127.0.0.1] [--port 8080] [--slots 1] [--max-queue 100] [--max-queued-per-client 4]
            [--step-ms 100] [--token-ms 30] [--history 256] [--test-hooks]
        """
}

public struct UsageError: Error, CustomStringConvertible {
    public var description: String

    init(_ description: String) {
        self.description = description
    }
}
