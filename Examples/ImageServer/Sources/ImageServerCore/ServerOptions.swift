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
    /// Finished jobs (and their images) kept for `GET /jobs/:id` and `/result`, at most.
    public var history = 10_000
    /// How long a finished job (its status, image and last preview) stays for a slow or reloading client.
    public var keepFinished: Duration = .seconds(600)
    /// The most bytes of finished jobs' images kept; the oldest go first.
    public var resultBytes = 256 << 20
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
    /// Most event streams one client may hold open at once; more answer 429.
    public var maxStreamsPerClient = 8
    /// How long a connection may sit idle, or take to send its request, before the server closes it.
    public var idleTimeout: Duration = .seconds(30)
    /// The load test's and the browser test's hooks: the `/debug` routes and a job's own `step_ms`. Off by
    /// default: with them anyone could stall the GPU for everyone.
    public var testHooks = false

    public init() {}

    /// Parses `--host H --port N --slots N --max-queue N --max-queued-per-client N --step-ms N --token-ms N
    /// --history N --keep-finished 10m --result-mb N --max-streams-per-client N --idle-timeout 30s --test-hooks`.
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
        func duration(_ flag: String, least: Int = 0) throws -> Duration {
            let text = try value(flag)
            let units: [Character: Int] = ["s": 1, "m": 60, "h": 3_600]
            let unit = text.last.flatMap { units[$0] }
            guard let count = Int(unit == nil ? Substring(text) : text.dropLast()),
                (least...1_000_000).contains(count)
            else {
                throw UsageError("\(flag) takes a duration of at least \(least)s, like 90s, 10m or 2h, not '\(text)'")
            }
            return .seconds(count * (unit ?? 1))
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
            case "--keep-finished": options.keepFinished = try duration(flag)
            case "--result-mb": options.resultBytes = try number(flag, in: 0...1_000_000) << 20
            case "--max-streams-per-client": options.maxStreamsPerClient = try number(flag, in: 1...100_000)
            case "--idle-timeout": options.idleTimeout = try duration(flag, least: 1)
            case "--help", "-h": throw UsageError("")
            default: throw UsageError("unknown option '\(flag)'")
            }
        }
        return options
    }

    public static let usage = """
        usage: ImageServer [--host 127.0.0.1] [--port 8080] [--slots 1] [--max-queue 100] [--max-queued-per-client 4]
            [--step-ms 100] [--token-ms 30] [--history 10000] [--keep-finished 10m] [--result-mb 256]
            [--max-streams-per-client 8] [--idle-timeout 30s] [--test-hooks]
        """
}

public struct UsageError: Error, CustomStringConvertible {
    public var description: String

    init(_ description: String) {
        self.description = description
    }
}
