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
        .package(name: "swift-call-queue", path: "../.."),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
    ],
    targets: [
        .target(
            name: "ImageServerCore",
            dependencies: [
                .product(name: "CallQueue", package: "swift-call-queue"),
                .product(name: "Hummingbird", package: "hummingbird"),
            ],
            resources: [.copy("Resources/index.html")],
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
