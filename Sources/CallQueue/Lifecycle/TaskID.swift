import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A task's identity: given by the caller (AUTOMATIC1111's `task(...)` strings included) or generated.
public struct TaskID: Sendable, Hashable, Codable, CustomStringConvertible, ExpressibleByStringLiteral {
    /// The id as the client sees it.
    public var rawValue: String

    public init(_ rawValue: String) {
        self.rawValue = rawValue
    }

    public init(stringLiteral rawValue: String) {
        self.rawValue = rawValue
    }

    public var description: String { rawValue }

    /// A new id in AUTOMATIC1111's UI format: `task(` + 15 base-36 characters + `)`.
    ///
    /// The first 12 characters carry 62 random bits from the system's generator: ids cannot be guessed, so a
    /// client cannot cancel another's task by trying ids. The system's random bytes are drawn 64 ids at a time
    /// (on Linux each draw is a system call) and each is used once. The last 3 characters count, so ids made
    /// in a row differ even in the unlikely case of equal draws.
    public static func generate() -> TaskID {
        var random = randomBits.withLock { $0.next() } % 4_738_381_338_321_616_896  // 36^12
        var count = UInt64(idCounter.wrappingAdd(1, ordering: .relaxed).oldValue % 46_656)  // 36^3
        let text = String(unsafeUninitializedCapacity: 21) { buffer in
            for (index, byte) in "task(".utf8.enumerated() { buffer[index] = byte }
            for index in stride(from: 16, through: 5, by: -1) {
                buffer[index] = base36[Int(random % 36)]
                random /= 36
            }
            for index in stride(from: 19, through: 17, by: -1) {
                buffer[index] = base36[Int(count % 36)]
                count /= 36
            }
            buffer[20] = UInt8(ascii: ")")
            return 21
        }
        return TaskID(text)
    }

    /// The system's random words, drawn in blocks.
    private struct RandomBlock {
        private var words: [UInt64] = []

        mutating func next() -> UInt64 {
            if words.isEmpty {
                words = Self.draw(64)
            }
            return words.removeLast()
        }

        /// `count` words in one system call where the platform has one, else word by word.
        private static func draw(_ count: Int) -> [UInt64] {
            #if canImport(Glibc)
                // The kernel's generator, as SystemRandomNumberGenerator's, in one read.
                let file = open("/dev/urandom", O_RDONLY | O_CLOEXEC)
                if file >= 0 {
                    defer { close(file) }
                    let bytes = count * MemoryLayout<UInt64>.size
                    let block = [UInt64](unsafeUninitializedCapacity: count) { buffer, initialized in
                        initialized = read(file, buffer.baseAddress, bytes) == bytes ? count : 0
                    }
                    if block.count == count { return block }
                }
            #endif
            var generator = SystemRandomNumberGenerator()
            return (0..<count).map { _ in generator.next() }
        }
    }

    private static let randomBits = LockedState(RandomBlock())
    private static let base36 = Array("0123456789abcdefghijklmnopqrstuvwxyz".utf8)
    private static let idCounter = Atomic<Int>(0)

    /// AUTOMATIC1111's rule for a call's first argument: a `String` (exactly; a `Substring` does not count)
    /// that starts with `task(` and ends with `)` is the task's id.
    public static func fromFirstArgument(_ argument: Any) -> TaskID? {
        guard let text = argument as? String, text.hasPrefix("task("), text.hasSuffix(")"), text.count >= 6 else {
            return nil
        }
        return TaskID(text)
    }

    public init(from decoder: any Decoder) throws {
        rawValue = try decoder.singleValueContainer().decode(String.self)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}
