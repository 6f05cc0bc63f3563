import CallQueue

/// What a client asks for in `POST /chat`.
public struct ChatRequest: Codable, Sendable, CheckedRequest {
    public var prompt: String
    /// How many tokens to generate (default 60).
    public var tokens: Int?
    public var seed: UInt64?

    public static let tokenRange = 1...1_000
    static let example = #"{"prompt": "tell me of foxes", "tokens": 60}"#

    /// The request with defaults filled in, or a message saying what is wrong.
    func validated(under options: ServerOptions) throws(BadRequest) -> (prompt: String, tokens: Int, seed: UInt64) {
        let prompt = try JobRequest.checked(prompt: prompt)
        let tokens = tokens ?? 60
        guard Self.tokenRange.contains(tokens) else {
            throw BadRequest(
                "'tokens' must be in \(Self.tokenRange.lowerBound)...\(Self.tokenRange.upperBound), not \(tokens)")
        }
        return (prompt, tokens, seed ?? 0)
    }
}

/// A simulated text model in the same "gpu" group as the image jobs: one token per `tokenDuration`, each
/// emitted as a chunk of the call's partial output, progress per token, cancellation honoured between
/// tokens; the whole text is the call's result.
public struct SimulatedChat: Sendable {
    let tokenDuration: Duration
    /// Awaited before each token with its index: the server's hold (`POST /debug/hold`), and tests that hold
    /// a call at a token of their choice.
    let beforeToken: (@Sendable (Int) async throws -> Void)?

    public init(tokenDuration: Duration) {
        self.init(tokenDuration: tokenDuration, beforeToken: nil)
    }

    init(tokenDuration: Duration, beforeToken: (@Sendable (Int) async throws -> Void)?) {
        self.tokenDuration = tokenDuration
        self.beforeToken = beforeToken
    }

    static let words = [
        "the", "fox", "runs", "through", "snow", "under", "a", "pale", "sky", "and", "every", "step", "leaves",
        "blue", "shadows", "while", "wind", "carries", "quiet", "songs", "over", "hills", "of", "light",
    ]

    /// The token at `index` of the answer to `prompt`: the same request gives the same text.
    static func token(_ index: Int, prompt: String, seed: UInt64) -> String {
        if index == 0 { return "About \"\(prompt.prefix(40))\":" }
        var state = seed &+ UInt64(truncatingIfNeeded: index) &* 0x9E37_79B9_7F4A_7C15
        for byte in prompt.utf8.prefix(64) { state = (state ^ UInt64(byte)) &* 0x100_0000_01B3 }
        return " " + words[Int(state >> 33) % words.count]
    }

    /// The call's body: emits each token as it is made, and returns the whole text.
    func generate(prompt: String, tokens: Int, seed: UInt64, context: CallContext) async throws -> String {
        var text = ""
        for index in 0..<tokens {
            try await beforeToken?(index)
            try Task.checkCancellation()
            if tokenDuration > .zero { try await Task.sleep(for: tokenDuration) }
            let token = Self.token(index, prompt: prompt, seed: seed)
            text += token
            context.emitChunk(token)
            context.report(completed: index + 1, of: tokens, step: "token \(index + 1) of \(tokens)")
        }
        return text
    }
}
