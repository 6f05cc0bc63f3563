// swift-tools-version: 6.2

import PackageDescription

let strictSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
]

/// What the cluster-wide groups build on, with the `Postgres` trait only.
let postgresDependencies: [Target.Dependency] = [
    .product(name: "PostgresNIO", package: "postgres-nio", condition: .when(traits: ["Postgres"])),
    .product(name: "ServiceLifecycle", package: "swift-service-lifecycle", condition: .when(traits: ["Postgres"])),
    .product(name: "Logging", package: "swift-log", condition: .when(traits: ["Postgres"])),
    .product(name: "NIOConcurrencyHelpers", package: "swift-nio", condition: .when(traits: ["Postgres"])),
]

let package = Package(
    name: "swift-call-queue",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "CallQueue", targets: ["CallQueue"]),
        .executable(name: "CallQueueDemo", targets: ["CallQueueDemo"]),
        // Cluster-wide groups on PostgreSQL; empty unless the `Postgres` trait is on.
        .library(name: "CallQueuePostgres", targets: ["CallQueuePostgres"]),
        // Test fixtures: fake libnvidia-ml builds, loaded by path in the tests. Nothing links them.
        .library(name: "FakeNVML", type: .dynamic, targets: ["FakeNVML"]),
        .library(name: "FakeNVMLLegacy", type: .dynamic, targets: ["FakeNVMLLegacy"]),
    ],
    // Integrations, all off by default. SwiftPM fetches a trait's dependencies only when the trait is on, so
    // the default build resolves no package.
    traits: [
        .trait(
            name: "Logging",
            description: "LoggingCallQueueObserver: queue events to a swift-log Logger the application passes in"
        ),
        .trait(
            name: "Metrics",
            description: "MetricsCallQueueObserver: swift-metrics meters, timers, an error counter and a memory gauge"
        ),
        .trait(
            name: "ServiceLifecycle",
            description:
                "CallQueue and MemorySamplerService as swift-service-lifecycle Services: graceful shutdown of the queue"
        ),
        .trait(
            name: "Postgres",
            description:
                "CallQueuePostgres: cluster-wide groups, one strict-FIFO line across replicas, on PostgreSQL (postgres-nio)"
        ),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
    ],
    targets: [
        // NVML's types and function-pointer typedefs, in a header of our own; no `link`: libnvidia-ml is
        // opened with dlopen at run time.
        .systemLibrary(name: "CNVML", path: "Sources/CNVML"),
        .target(
            name: "CallQueue",
            dependencies: [
                "CNVML",
                .product(name: "Logging", package: "swift-log", condition: .when(traits: ["Logging"])),
                .product(name: "CoreMetrics", package: "swift-metrics", condition: .when(traits: ["Metrics"])),
                .product(
                    name: "ServiceLifecycle",
                    package: "swift-service-lifecycle",
                    condition: .when(traits: ["ServiceLifecycle"])
                ),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "CallQueuePostgres",
            dependencies: [
                "CallQueue"
            ] + postgresDependencies,
            swiftSettings: strictSettings
        ),
        .target(name: "FakeNVML", path: "Tests/FakeNVML"),
        .target(name: "CallQueueTestSupport", path: "Tests/CallQueueTestSupport", swiftSettings: strictSettings),
        .target(name: "FakeNVMLLegacy", path: "Tests/FakeNVMLLegacy"),
        .executableTarget(
            name: "CallQueueDemo",
            dependencies: [
                "CallQueue",
                "CallQueuePostgres",
                .product(name: "PostgresNIO", package: "postgres-nio", condition: .when(traits: ["Postgres"])),
                .product(name: "Logging", package: "swift-log", condition: .when(traits: ["Postgres"])),
            ],
            swiftSettings: strictSettings
        ),
        // A replica process for the PostgreSQL fault tests that signal a process; prints a line and exits
        // without the `Postgres` trait.
        .executableTarget(
            name: "CallQueueReplicaFixture",
            dependencies: ["CallQueue", "CallQueuePostgres"] + postgresDependencies,
            path: "Tests/CallQueueReplicaFixture",
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "CallQueuePostgresTests",
            dependencies: [
                "CallQueue",
                "CallQueuePostgres",
                "CallQueueTestSupport",
            ] + postgresDependencies,
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "CallQueueTests",
            dependencies: [
                "CallQueue",
                "CallQueueTestSupport",
                .product(
                    name: "Logging", package: "swift-log", condition: .when(traits: ["Logging", "ServiceLifecycle"])),
                .product(name: "InMemoryLogging", package: "swift-log", condition: .when(traits: ["Logging"])),
                .product(name: "CoreMetrics", package: "swift-metrics", condition: .when(traits: ["Metrics"])),
                .product(name: "MetricsTestKit", package: "swift-metrics", condition: .when(traits: ["Metrics"])),
                .product(
                    name: "ServiceLifecycleTestKit",
                    package: "swift-service-lifecycle",
                    condition: .when(traits: ["ServiceLifecycle"])
                ),
            ],
            swiftSettings: strictSettings
        ),
    ]
)
