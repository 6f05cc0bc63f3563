#if Postgres
    import CallQueue
    import Foundation
    import PostgresNIO

    extension PostgresPermitSource {
        /// The pool's and the listener's settings from a URL such as `postgres://user:password@host:5432/db`,
        /// without TLS (a loopback or private network). For TLS, build the two configurations yourself with the
        /// same host, user and database.
        ///
        /// - Throws: ``CallQueueError`` with ``CallQueueError/Code/invalidArgument`` when the URL is not a
        ///   `postgres://` or `postgresql://` URL with a host and a user.
        public static func connectionSettings(
            url text: String
        ) throws -> (client: PostgresClient.Configuration, listener: PostgresConnection.Configuration) {
            guard let url = URLComponents(string: text), ["postgres", "postgresql"].contains(url.scheme ?? ""),
                let host = url.host, !host.isEmpty, let user = url.user, !user.isEmpty
            else {
                throw CallQueueError(
                    .invalidArgument, "'\(text)' is not a PostgreSQL URL like postgres://user:password@host:5432/db")
            }
            let port = url.port ?? 5432
            let database = url.path.isEmpty ? nil : String(url.path.dropFirst())
            var client = PostgresClient.Configuration(
                host: host, port: port, username: user, password: url.password, database: database, tls: .disable)
            client.options.additionalStartupParameters = Self.sessionSettings
            var listener = PostgresConnection.Configuration(
                host: host, port: port, username: user, password: url.password, database: database, tls: .disable)
            listener.options.additionalStartupParameters = Self.sessionSettings
            return (client, listener)
        }

        /// Timeouts that keep a broken client from holding a group's row lock for long.
        static let sessionSettings = [
            ("statement_timeout", "5000"), ("lock_timeout", "5000"), ("idle_in_transaction_session_timeout", "10000"),
        ]
    }
#endif
