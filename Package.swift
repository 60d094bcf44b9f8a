// swift-tools-version:6.0
import Foundation
import PackageDescription

// OpenMP needs unsafe flags, which SwiftPM refuses in any versioned dependency. This
// repository's own builds (README commands, CI) set SPARROW_OPENMP=1; without it the kernels
// build flag-free and Swift runs the tiles on DispatchQueue.concurrentPerform.
let openMP = ProcessInfo.processInfo.environment["SPARROW_OPENMP"] == "1"

var kernelC: [CSetting] = [.headerSearchPath(".")]
var kernelLinker: [LinkerSetting] = [.linkedLibrary("openblas"), .linkedLibrary("m")]
if openMP {
  kernelC.append(.unsafeFlags(["-fopenmp"]))
  kernelLinker.append(.linkedLibrary("omp5"))
}

let package = Package(
  name: "Sparrow",
  platforms: [.macOS(.v13)],
  products: [
    .library(name: "Sparrow", targets: ["Sparrow"]),
    .executable(name: "sparrow", targets: ["SparrowCLI"]),
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
  ],
  targets: [
    .systemLibrary(name: "COpenBLAS", path: "Kernels/openblas"),
    .target(
      name: "SparrowKernels",
      dependencies: ["COpenBLAS"],
      path: "Kernels",
      exclude: ["openblas", "conv/dwconv/ukernels.inc", "spmm/ukernels.inc", "spmm/ukernels-avx2.inc", "spmm/ukernels-neon.inc"],
      cSettings: kernelC,
      linkerSettings: kernelLinker
    ),
    .target(
      name: "Sparrow",
      dependencies: ["SparrowKernels", .product(name: "SwiftProtobuf", package: "swift-protobuf")],
      path: "Sources/Sparrow",
      exclude: ["ONNX/Generated/regenerate.sh"]
    ),
    .target(name: "SparrowBench", dependencies: ["Sparrow"], path: "Bench/SparrowBench"),
    .executableTarget(
      name: "SparrowCLI",
      dependencies: [
        "Sparrow", "SparrowBench",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
      ],
      path: "Sources/SparrowCLI"
    ),
    .testTarget(
      name: "SparrowTests", dependencies: ["Sparrow"], path: "Tests/SparrowTests", exclude: ["Fixtures"]),
    .testTarget(name: "SparrowBenchTests", dependencies: ["SparrowBench", "Sparrow"], path: "Tests/SparrowBenchTests"),
  ]
)
