// swift-tools-version: 6.1
import PackageDescription

// Module graph (see README "Code map"):
//   CShims (C: curl variadics, the write-callback hot path, OpenSSL SHA-256)
//     -> HaulKit (the embeddable library; no server framework)
//       -> HaulServer (`haul serve`: Ollama's HTTP API on Hummingbird)
//         -> haul (the CLI)
//
// Linux only (no `platforms`): the C shim uses Linux's fallocate and
// eventfd, the store flock and /proc/sys/kernel/random/boot_id.
let package = Package(
    name: "Haul",
    products: [
        .library(name: "HaulKit", targets: ["HaulKit"]),
        .library(name: "HaulServer", targets: ["HaulServer"]),
        .executable(name: "haul", targets: ["haul"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        // No default traits: they pull in swift-configuration, which the
        // daemon does not use (OLLAMA_HOST is parsed by Ollama's own rules).
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: []),
        // HaulKit logs notices to an injected Logger. The rest are already
        // in Hummingbird's graph; named because the daemon uses them directly.
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        // HaulKit counts pulls, bytes and connections through swift-metrics
        // (an embedder's backend, or none); `haul serve` exports them in
        // Prometheus' format.
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        // hosts.toml (containerd's mirror configuration) is TOML.
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0")
    ],
    targets: [
        .target(
            name: "CShims",
            path: "CShims",
            cSettings: [
                .define("_GNU_SOURCE"),
                .define("OPENSSL_SUPPRESS_DEPRECATED")
                // No unsafe build flags: SwiftPM refuses them in a package that is
                // depended on by version. Release builds compile C at -O2
                // already; `make cwarn` holds the shim to -Wall -Wextra.
            ],
            linkerSettings: [.linkedLibrary("curl"), .linkedLibrary("crypto")]
        ),
        .target(
            name: "HaulKit",
            dependencies: [
                "CShims",
                .product(name: "TOMLKit", package: "TOMLKit"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics")
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .target(
            name: "HaulServer",
            dependencies: [
                "HaulKit",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus")
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .executableTarget(
            name: "haul",
            dependencies: [
                "HaulKit",
                "HaulServer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log")
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        // Tests by kind: unit tests of the library (no servers, no
        // processes but small tools), route tests of the daemon (in process,
        // HummingbirdTesting), end-to-end tests of the `haul` binary against
        // real servers. The support target holds what they share.
        .target(
            name: "HaulTestSupport",
            dependencies: ["HaulKit"],
            path: "Tests/HaulTestSupport",
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        // The fuzz targets, and libFuzzer's entry into them (`make fuzz`
        // builds it with --sanitize=fuzzer; see Tests/fuzz/Entry.swift).
        // HaulKitTests replays their corpus.
        .executableTarget(
            name: "haul-fuzz",
            dependencies: ["HaulKit", "CShims"],
            path: "Tests/fuzz",
            exclude: ["corpus"],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .testTarget(
            name: "HaulKitTests",
            dependencies: ["HaulKit", "CShims", "HaulTestSupport", "haul-fuzz"],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .testTarget(
            name: "HaulServerTests",
            dependencies: [
                "HaulKit", "HaulServer", "HaulTestSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .testTarget(
            name: "HaulIntegrationTests",
            dependencies: [
                "HaulKit", "HaulServer", "HaulTestSupport", .product(name: "Logging", package: "swift-log"),
                .product(name: "MetricsTestKit", package: "swift-metrics")
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        )
    ]
)
