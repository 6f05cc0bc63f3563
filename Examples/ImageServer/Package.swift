// swift-tools-version: 6.2

import PackageDescription

let strictSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "ImageServer",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "ImageServer", targets: ["ImageServer"])
    ],
    dependencies: [
        .package(name: "swift-call-queue", path: "../..", traits: ["Metrics"]),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
    ],
    targets: [
        .target(
            name: "ImageServerCore",
            dependencies: [
                .product(name: "CallQueue", package: "swift-call-queue"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            resources: [.copy("Resources/index.html"), .copy("Resources/openapi.json")],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "ImageServer",
            dependencies: ["ImageServerCore"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "ImageServerTests",
            dependencies: [
                "ImageServerCore",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            swiftSettings: strictSettings
        ),
    ]
)
