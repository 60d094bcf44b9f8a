import ArgumentParser
import Foundation
import Sparrow
import Testing

@testable import SparrowCLI

/// The repository root (models and their ONNX Runtime outputs under Models/).
let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
  .deletingLastPathComponent()

func modelPath(_ relative: String) -> String { repoRoot.appendingPathComponent(relative).path }

/// A fresh temporary folder, removed by the caller.
func temporaryFolder() throws -> URL {
  let url = FileManager.default.temporaryDirectory.appendingPathComponent("sparrow-cli-\(UUID().uuidString)")
  try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
  return url
}

/// `body` must throw a ValidationError whose message contains `text`.
func expectValidation(_ text: String, sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void) {
  do {
    try body()
    Issue.record("expected a ValidationError mentioning '\(text)'", sourceLocation: sourceLocation)
  } catch let e as ValidationError {
    #expect(e.message.contains(text), "\(e.message)", sourceLocation: sourceLocation)
  } catch {
    Issue.record("expected a ValidationError mentioning '\(text)', got \(error)", sourceLocation: sourceLocation)
  }
}

/// The largest |a - b| over two float tensors of one shape.
func maxAbsDiff(_ a: Tensor, _ b: Tensor) -> Float {
  zip(a.floats, b.floats).reduce(0) { max($0, abs($1.0 - $1.1)) }
}

@Suite struct PlanArgumentsTests {
  @Test func shapesParse() throws {
    let a = try PlanArguments.parse(["--shape", "x=1x3x224x224", "--shape", "a=b=2x5"])
    #expect(try a.parsedShapes() == ["x": [1, 3, 224, 224], "a=b": [2, 5]])
  }

  @Test func badShapesNameTheirFault() throws {
    expectValidation("expected NAME=1x3x224x224") { _ = try PlanArguments.parse(["--shape", "x"]).parsedShapes() }
    expectValidation("positive integers") { _ = try PlanArguments.parse(["--shape", "x=1x0x4"]).parsedShapes() }
    expectValidation("positive integers") { _ = try PlanArguments.parse(["--shape", "x=1xax4"]).parsedShapes() }
    expectValidation("positive integers") { _ = try PlanArguments.parse(["--shape", "x="]).parsedShapes() }
  }

  @Test func badOptionsNameTheirFault() throws {
    expectValidation("expected auto, dense, csr, nm, bsr or channel") {
      _ = try PlanArguments.parse(["--format", "sparse"]).options()
    }
    expectValidation("--threads must be at least 1") { _ = try PlanArguments.parse(["--threads", "0"]).options() }
    expectValidation("expected measure, im2col, direct or pixel") {
      _ = try PlanArguments.parse(["--conv", "fft"]).options()
    }
    expectValidation("--max-tensor-mib must be positive") {
      _ = try PlanArguments.parse(["--max-tensor-mib", "0"]).options()
    }
  }

  @Test func optionsCarryTheirValues() throws {
    let o = try PlanArguments.parse(["--format", "csr", "--threads", "2", "--max-tensor-mib", "3"]).options()
    #expect(o.format == .fixed(.csr))
    #expect(o.threads == 2)
    #expect(o.maxTensorBytes == 3 << 20)
  }

  @Test func fileNamesAreSanitized() {
    #expect(sanitized("logits") == "logits")
    #expect(sanitized("a/b:c d") == "a_b_c_d")
    #expect(sanitized("../x") == ".._x")
  }
}

@Suite struct RunCommandTests {
  /// `sparrow run` with the committed inputs writes what ONNX Runtime wrote for them (Models/ops).
  @Test(arguments: ["cnn_small", "add_scalar_left"])
  func writesOutputsEqualToONNXRuntime(model: String) throws {
    let dir = try temporaryFolder()
    defer { try? FileManager.default.removeItem(at: dir) }
    let refs = try FileManager.default.contentsOfDirectory(atPath: modelPath("Models/ops/\(model)")).sorted()
    var args = [modelPath("Models/ops/\(model).onnx"), "--output-dir", dir.path, "--threads", "1"]
    var outputs: [String: String] = [:]
    for f in refs {
      // input_<i>_<name>.npy, output_<i>_<name>.npy
      let parts = f.dropLast(4).split(separator: "_", maxSplits: 2).map(String.init)
      if parts[0] == "input" { args += ["--input", "\(parts[2])=\(modelPath("Models/ops/\(model)/\(f)"))"] }
      if parts[0] == "output" { outputs[parts[2]] = modelPath("Models/ops/\(model)/\(f)") }
    }
    #expect(!outputs.isEmpty)
    var command = try RunCommand.parse(args)
    try command.run()
    for (name, refPath) in outputs {
      let got = try NPY.read(contentsOf: dir.appendingPathComponent(sanitized(name) + ".npy"))
      let want = try NPY.read(contentsOf: URL(fileURLWithPath: refPath))
      #expect(got.shape == want.shape && got.dtype == want.dtype, "\(model) \(name)")
      #expect(maxAbsDiff(got, want) <= 1e-4, "\(model) \(name)")
    }
  }

  /// Parses and runs `sparrow run ARGS`.
  func run(_ args: [String]) throws {
    var c = try RunCommand.parse(args)
    try c.run()
  }

  @Test func refusesBadArguments() throws {
    let m = modelPath("Models/ops/cnn_small.onnx")
    expectValidation("--repeat must be at least 1") { try run([m, "--repeat", "0"]) }
    expectValidation("--warmup must be at least 0") { try run([m, "--warmup=-1"]) }
    expectValidation("--gate") { try run([m, "--gate", "half"]) }
    expectValidation("expected NAME=FILE.npy") { try run([m, "--input", "X"]) }
  }

  /// Outside data (a missing or corrupt model, a missing input file, an unknown input name) ends
  /// the command with exit code 1 and a message, never a trap.
  @Test func failsCleanlyOnBadFiles() throws {
    let dir = try temporaryFolder()
    defer { try? FileManager.default.removeItem(at: dir) }
    let corrupt = dir.appendingPathComponent("corrupt.onnx")
    let good = try Data(contentsOf: URL(fileURLWithPath: modelPath("Models/ops/cnn_small.onnx")))
    try good.prefix(good.count / 3).write(to: corrupt)
    let x = modelPath("Models/ops/cnn_small/input_0_X.npy")
    let cases: [[String]] = [
      [dir.appendingPathComponent("missing.onnx").path],
      [corrupt.path, "--input", "X=\(x)"],
      [modelPath("Models/ops/cnn_small.onnx"), "--input", "X=\(dir.path)/missing.npy"],
      [modelPath("Models/ops/cnn_small.onnx"), "--input", "X=\(x)", "--input", "Y=\(x)"],
    ]
    for args in cases {
      do {
        try run(args)
        Issue.record("\(args) should fail")
      } catch let e as ExitCode {
        #expect(e == ExitCode(1), "\(args)")
      }
    }
  }
}
