// swift-tools-version:6.1
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

// The server (`sparrow serve`, on Hummingbird and SwiftNIO) costs minutes per clean build
// configuration. SPARROW_SERVER=0 leaves it out of the package: Tests/run.sh's release build uses
// that (the debug build tests the server); a consumer of the `Sparrow` library never builds it.
let withServer = ProcessInfo.processInfo.environment["SPARROW_SERVER"] != "0"

var dependencies: [Package.Dependency] = [
  .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
  .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
]
var cliDependencies: [Target.Dependency] = [
  "Sparrow", "SparrowBench", .product(name: "ArgumentParser", package: "swift-argument-parser"),
]
var cliSettings: [SwiftSetting] = []
var serverTargets: [Target] = []
if withServer {
  // No default traits: the configuration-reader support would build swift-configuration for nothing.
  dependencies.append(.package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: []))
  dependencies.append(.package(url: "https://github.com/apple/swift-log", from: "1.16.0"))
  dependencies.append(.package(url: "https://github.com/apple/swift-http-types", from: "1.0.0"))
  dependencies.append(.package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.0.0"))
  // NIOCore (already in the graph through Hummingbird): the listening socket's options at shutdown.
  dependencies.append(.package(url: "https://github.com/apple/swift-nio", from: "2.81.0"))
  // gRPC (the Open Inference Protocol's GRPCInferenceService). Its generated code is committed
  // (Sources/SparrowServer/GRPC/generate.sh builds the code generators of grpc/grpc-swift-protobuf
  // 2.4.1). That package is no dependency here: its build plugin needs swift-protobuf's protoc,
  // which SwiftPM would then compile from C++ in every full build (minutes of CI); the two
  // message coders it would give are in GRPC/ProtobufCoding.swift.
  dependencies.append(.package(url: "https://github.com/grpc/grpc-swift-2", from: "2.4.3"))
  dependencies.append(.package(url: "https://github.com/grpc/grpc-swift-nio-transport", from: "2.9.2"))
  cliDependencies.append("SparrowServer")
  cliSettings.append(.define("SPARROW_SERVER"))
  serverTargets = [
    .target(
      name: "SparrowServer",
      dependencies: [
        "Sparrow", .product(name: "Hummingbird", package: "hummingbird"),
        .product(name: "Logging", package: "swift-log"), .product(name: "HTTPTypes", package: "swift-http-types"),
        .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        .product(name: "UnixSignals", package: "swift-service-lifecycle"),
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "GRPCCore", package: "grpc-swift-2"),
        .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport"),
        .product(name: "SwiftProtobuf", package: "swift-protobuf"),
      ],
      path: "Sources/SparrowServer",
      exclude: ["GRPC/grpc_service.proto", "GRPC/generate.sh"]
    ),
    .testTarget(
      name: "SparrowServerTests",
      dependencies: [
        "SparrowServer", "Sparrow", .product(name: "GRPCCore", package: "grpc-swift-2"),
        .product(name: "GRPCInProcessTransport", package: "grpc-swift-2"),
      ],
      path: "Tests/SparrowServerTests"),
  ]
}

let package = Package(
  name: "Sparrow",
  platforms: [.macOS(.v15)],
  products: [
    .library(name: "Sparrow", targets: ["Sparrow"]),
    .executable(name: "sparrow", targets: ["SparrowCLI"]),
    // The C ABI (Sources/SparrowC/sparrow_c.h) the Python package loads: libSparrowC.so.
    .library(name: "SparrowC", type: .dynamic, targets: ["SparrowC"]),
  ],
  dependencies: dependencies,
  targets: [
    .systemLibrary(name: "COpenBLAS", path: "Kernels/openblas"),
    .target(
      name: "SparrowKernels",
      dependencies: ["COpenBLAS"],
      path: "Kernels",
      exclude: ["openblas", "conv/dwconv/ukernels.inc", "dense/gemm/ukernels.inc", "spmm/ukernels.inc", "spmm/ukernels-avx2.inc", "spmm/ukernels-neon.inc", "rowwise/ukernels.inc", "qgemm/ukernels.inc", "qspmm/ukernels.inc", "qconv/ukernels.inc", "qelem/ukernels.inc", "gate/ukernels.inc"],
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
    .target(name: "SparrowC", dependencies: ["Sparrow", "SparrowBench"], path: "Sources/SparrowC", exclude: ["sparrow_c.h"]),
    .executableTarget(
      name: "SparrowCLI",
      dependencies: cliDependencies,
      path: "Sources/SparrowCLI",
      swiftSettings: cliSettings
    ),
    .testTarget(
      name: "SparrowTests", dependencies: ["Sparrow"], path: "Tests/SparrowTests",
      exclude: ["Fixtures", "ONNX/must-run-op-models.txt"]),
    .testTarget(name: "SparrowBenchTests", dependencies: ["SparrowBench", "Sparrow"], path: "Tests/SparrowBenchTests"),
    .testTarget(
      name: "SparrowCLITests",
      dependencies: ["SparrowCLI", "Sparrow", .product(name: "ArgumentParser", package: "swift-argument-parser")],
      path: "Tests/SparrowCLITests"),
  ] + serverTargets
)
