// swift-tools-version:6.0
// libFuzzer harness for Sparrow's ONNX importer and planner, kept out of the main package so its
// entry point never clashes with the normal build. Built by Tests/Fuzz/run.sh.
import PackageDescription

let package = Package(
  name: "SparrowFuzz",
  dependencies: [.package(name: "Sparrow", path: "../..")],
  targets: [
    .executableTarget(
      name: "FuzzImporter", dependencies: [.product(name: "Sparrow", package: "Sparrow")],
      swiftSettings: [.unsafeFlags(["-parse-as-library"])])
  ]
)
