// swift-tools-version: 6.1
import PackageDescription

// An application that embeds HaulKit, depending on Haul *by version*, as any
// package outside this repository would. `make test` builds it against a
// tagged copy of the checkout (EmbedderTests), so a change that breaks
// versioned consumption (an `unsafeFlags`, a product that stops building
// on its own) fails there.
//
// The URL is where Haul's repository is: HAUL_PACKAGE_URL, else the
// checkout this example sits in (a local git repository is a valid
// package URL, and its version tags count). In your own Package.swift,
// write your git host's URL for Haul.
let haul = Context.environment["HAUL_PACKAGE_URL"] ?? "file://" + Context.packageDirectory + "/../.."

let package = Package(
    name: "Embedder",
    dependencies: [
        .package(url: haul, from: "0.1.0")
    ],
    targets: [
        .executableTarget(
            name: "Embedder",
            dependencies: [.product(name: "HaulKit", package: "haul")],
            swiftSettings: [.swiftLanguageMode(.v6)]
        )
    ]
)
