// swift-tools-version: 6.2

import PackageDescription

// The DocC Vapor guide's code as a package, so that it is compiled against Vapor 4.122.3.
let package = Package(
    name: "VaporGuide",
    platforms: [.macOS(.v13)],
    dependencies: [
        .package(name: "swift-call-queue", path: "../.."),
        .package(url: "https://github.com/vapor/vapor.git", from: "4.122.3"),
    ],
    targets: [
        .executableTarget(
            name: "VaporGuide",
            dependencies: [
                .product(name: "CallQueue", package: "swift-call-queue"),
                .product(name: "Vapor", package: "vapor"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        )
    ]
)
