#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The demo's command line.
struct DemoOptions {
    var clients = 24
    var gpuSlots = 2
    var duration = 5.0
    var interactive = isatty(STDOUT_FILENO) != 0
    var json = false
    var seed: UInt64 = 42
    /// Largest batch of GPU calls; 1 runs them one by one.
    var batch = 1
    /// With the `Postgres` trait: the database that makes "gpu" one line across replica processes.
    var postgres: String?
    var replica = "replica-1"

    static let usage = """
        usage: CallQueueDemo [--clients N] [--slots N] [--duration SECONDS] [--batch N] [--plain] [--json] [--seed N]
                             [--postgres URL --replica NAME]

          --clients N         simulated clients arriving over the run (default 24)
          --slots N           slots of the "gpu" group, one per GPU (default 2)
          --duration SECONDS  how long clients keep arriving (default 5)
          --batch N           run waiting GPU calls together, up to N per batch in one slot (default 1: no batching)
          --plain             no live view: one line per event (the default when output is not a terminal)
          --json              print the final report as JSON
          --seed N            the random seed for arrivals, steps, failures and cancellations (default 42)
          --postgres URL      make "gpu" one line across replica processes sharing this database
                              (build with --traits Postgres; e.g. postgres://user@127.0.0.1:5432/db)
          --replica NAME      this process's name in the cluster, and the prefix of its task ids (default replica-1)
        """

    init(arguments: [String]) throws {
        var remaining = arguments[...]
        func value(_ flag: String) throws -> String {
            guard let next = remaining.popFirst() else { throw DemoError("\(flag) needs a value\n\n\(Self.usage)") }
            return next
        }
        while let argument = remaining.popFirst() {
            switch argument {
            case "--clients": clients = try Self.positive(try value(argument), argument)
            case "--slots": gpuSlots = try Self.positive(try value(argument), argument)
            case "--duration":
                guard let seconds = Double(try value(argument)), seconds > 0, seconds <= 600 else {
                    throw DemoError("--duration takes seconds between 0 and 600")
                }
                duration = seconds
            case "--batch": batch = try Self.positive(try value(argument), argument)
            case "--plain": interactive = false
            case "--json": json = true
            case "--seed":
                guard let seed = UInt64(try value(argument)) else { throw DemoError("--seed takes a whole number") }
                self.seed = seed
            case "--postgres": postgres = try value(argument)
            case "--replica":
                let name = try value(argument)
                guard !name.isEmpty, name.count <= 40, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" })
                else { throw DemoError("--replica takes 1 to 40 letters, digits and dashes") }
                replica = name
            case "--help", "-h": throw DemoError(Self.usage, isHelp: true)
            default: throw DemoError("unknown argument \(argument)\n\n\(Self.usage)")
            }
        }
        if json { interactive = false }
    }

    private static func positive(_ text: String, _ flag: String) throws -> Int {
        guard let number = Int(text), number >= 1, number <= 10_000 else {
            throw DemoError("\(flag) takes a whole number from 1 to 10000")
        }
        return number
    }
}

struct DemoError: Error, CustomStringConvertible {
    var description: String
    var isHelp = false

    init(_ description: String, isHelp: Bool = false) {
        self.description = description
        self.isHelp = isHelp
    }
}
