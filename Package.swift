// swift-tools-version: 6.2

import PackageDescription

let strictSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "swift-call-queue",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "CallQueue", targets: ["CallQueue"]),
        .executable(name: "CallQueueDemo", targets: ["CallQueueDemo"]),
    ],
    targets: [
        .target(
            name: "CallQueue",
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "CallQueueDemo",
            dependencies: ["CallQueue"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "CallQueueTests",
            dependencies: ["CallQueue"],
            swiftSettings: strictSettings
        ),
    ]
)
