import Foundation
import XCTest

#if Postgres
    import CallQueuePostgres
#endif

/// Says why the cluster tests did not run: a build without the `Postgres` trait (a plain `swift test`), or no
/// server. With both, it checks that the server's URL is one the source accepts.
final class PostgresTraitTests: XCTestCase {
    func testPostgresTestsNeedTheTraitAndAServer() throws {
        #if Postgres
            guard let url = ProcessInfo.processInfo.environment["CQ_POSTGRES_URL"] else {
                throw XCTSkip(
                    "CQ_POSTGRES_URL is not set: the PostgreSQL tests skip (`source .ci/postgres.sh && postgres_start`)"
                )
            }
            let settings = try PostgresPermitSource.connectionSettings(url: url)
            XCTAssertEqual(settings.listener.username, settings.client.username)
            XCTAssertThrowsError(try PostgresPermitSource.connectionSettings(url: "http://example.com/db"))
        #else
            throw XCTSkip(
                "the PostgreSQL tests are built with the Postgres trait only: source .ci/postgres.sh && "
                    + "postgres_start && swift test --traits Postgres --filter CallQueuePostgresTests")
        #endif
    }
}
