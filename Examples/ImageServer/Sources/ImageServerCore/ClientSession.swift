import CallQueue
import Hummingbird

/// Who a request comes from: the session the server gave the client, as an `HttpOnly`, `SameSite=Strict`
/// cookie, or sent back as `Authorization: Bearer <token>` (an API client keeps the `owner_token` of its 202).
///
/// A session is a random 128-bit token. It is the fairness key of the client's calls, so fair share serves
/// clients in turn and caps what each may queue, and the queue keeps it with each task's status: a route
/// about a job answers 404, exactly as for an unknown id, to anyone whose session is not the job's.
public struct ClientSession: Sendable, Hashable {
    public let token: String

    /// The cookie's name.
    public static let cookieName = "imageserver_session"

    /// A new session.
    public static func make() -> ClientSession {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) }
        return ClientSession(token: bytes.map { byte in String(byte, radix: 16).leftPadded(to: 2) }.joined())
    }

    /// The session a request carries, if its token is well-formed: a bearer token first, then the cookie.
    public static func of(_ request: Request) -> ClientSession? {
        if let authorization = request.headers[.authorization], authorization.hasPrefix("Bearer ") {
            return ClientSession(checking: String(authorization.dropFirst("Bearer ".count)))
        }
        for field in request.headers where field.name == .cookie {
            for pair in field.value.split(separator: ";") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                if parts.count == 2, String(parts[0]).trimmingCharacters() == cookieName {
                    return ClientSession(checking: String(parts[1]).trimmingCharacters())
                }
            }
        }
        return nil
    }

    /// A token of 32 lowercase hexadecimal digits, or `nil`.
    init?(checking token: String) {
        guard token.utf8.count == 32, token.utf8.allSatisfy({ (48...57).contains($0) || (97...102).contains($0) })
        else { return nil }
        self.token = token
    }

    private init(token: String) {
        self.token = token
    }

    /// The fairness key of this client's calls.
    public var fairness: CallFairness { CallFairness(key: FairnessKey(token)) }

    /// The `Set-Cookie` value that gives the client this session.
    var setCookie: String {
        "\(Self.cookieName)=\(token); Path=/; HttpOnly; SameSite=Strict; Max-Age=86400"
    }

    /// Whether the task belongs to this session.
    func owns(_ status: TaskStatus) -> Bool {
        status.fairnessKey?.value == token
    }
}

extension String {
    func leftPadded(to width: Int) -> String {
        String(repeating: "0", count: max(0, width - count)) + self
    }
}
