// swift-tools-version: 6.2

import PackageDescription

let package = Package(
    name: "Benchmarks",
    platforms: [.macOS(.v15)],
    traits: [
        .trait(name: "Postgres", description: "P1: cluster-wide groups on PostgreSQL beside the in-process group")
    ],
    dependencies: [
        .package(
            name: "swift-call-queue", path: "../",
            traits: [.init(name: "Postgres", condition: .when(traits: ["Postgres"]))]),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        // Its runtime-interposer trait needs a package this build does not use; keep the malloc one only.
        .package(
            url: "https://github.com/ordo-one/package-benchmark.git",
            from: "1.38.1",
            traits: ["MallocInterposer"]
        ),
    ],
    targets: [
        .target(name: "CMallocStats"),
        .target(
            name: "Baselines",
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .executableTarget(
            name: "SemaphoreBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "package-benchmark"),
                .product(name: "CallQueue", package: "swift-call-queue"),
                "Baselines",
                "CMallocStats",
            ],
            path: "Benchmarks/SemaphoreBenchmarks",
            swiftSettings: [.swiftLanguageMode(.v6)],
            plugins: [.plugin(name: "BenchmarkPlugin", package: "package-benchmark")]
        ),
        .executableTarget(
            name: "CallBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "package-benchmark"),
                .product(name: "CallQueue", package: "swift-call-queue"),
            ],
            path: "Benchmarks/CallBenchmarks",
            swiftSettings: [.swiftLanguageMode(.v6)],
            plugins: [.plugin(name: "BenchmarkPlugin", package: "package-benchmark")]
        ),
        // P1, run by hand against a PostgreSQL server (README): a plain executable, so that its latencies
        // are taken per call, beside the in-process group in the same run.
        .executableTarget(
            name: "ClusterBenchmarks",
            dependencies: [
                .product(name: "CallQueue", package: "swift-call-queue"),
                .product(name: "CallQueuePostgres", package: "swift-call-queue"),
                .product(name: "PostgresNIO", package: "postgres-nio", condition: .when(traits: ["Postgres"])),
            ],
            path: "Benchmarks/ClusterBenchmarks",
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
    ]
)
