import XCTest

/// Says why the cluster tests did not run in a build without the `Postgres` trait (a plain `swift test`).
final class PostgresTraitTests: XCTestCase {
    func testPostgresTestsNeedTheTraitAndAServer() throws {
        #if Postgres
            if ProcessInfo.processInfo.environment["CQ_POSTGRES_URL"] == nil {
                throw XCTSkip(
                    "CQ_POSTGRES_URL is not set: the PostgreSQL tests skip (`source .ci/postgres.sh && postgres_start`)"
                )
            }
        #else
            throw XCTSkip(
                "the PostgreSQL tests are built with the Postgres trait only: source .ci/postgres.sh && "
                    + "postgres_start && swift test --traits Postgres --filter CallQueuePostgresTests")
        #endif
    }
}
