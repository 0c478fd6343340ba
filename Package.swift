// swift-tools-version: 6.0
import PackageDescription

// Module graph (see README "Code map"):
//   CShims (C: curl variadics, the write-callback hot path, OpenSSL SHA-256)
//     -> HaulKit (the embeddable library; no server framework)
//       -> haul (the CLI)
let package = Package(
    name: "Haul",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "HaulKit", targets: ["HaulKit"]),
        .executable(name: "haul", targets: ["haul"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        .target(
            name: "CShims",
            path: "CShims",
            cSettings: [
                .define("_GNU_SOURCE"),
                .define("OPENSSL_SUPPRESS_DEPRECATED"),
                .unsafeFlags(["-O2", "-Wall", "-Wextra"]),
            ],
            linkerSettings: [.linkedLibrary("curl"), .linkedLibrary("crypto")]
        ),
        .target(
            name: "HaulKit",
            dependencies: ["CShims"],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .executableTarget(
            name: "haul",
            dependencies: [
                "HaulKit",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .testTarget(
            name: "HaulKitTests",
            dependencies: ["HaulKit", "CShims"],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
    ]
)
