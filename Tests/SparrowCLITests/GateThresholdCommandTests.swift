import ArgumentParser
import Foundation
import Sparrow
import Testing

@testable import SparrowCLI

/// `sparrow run --gate threshold:S --calibration ...` (issue 20): bad gates and missing or empty
/// calibration are one-line errors; threshold:0 (nothing skipped) equals ONNX Runtime's outputs
/// on the committed seeded encoder; threshold:0.5 runs and skips.
@Suite struct GateThresholdCommandTests {
  static let encoder = "Models/transformer/encoder_opset14_decomposed_tanh"

  func run(_ args: [String]) throws {
    var c = try RunCommand.parse(args)
    try c.run()
  }

  var inputs: [String] {
    [
      "--input", "input_ids=\(modelPath("\(Self.encoder)/input_0_input_ids.npy"))",
      "--input", "attention_mask=\(modelPath("\(Self.encoder)/input_1_attention_mask.npy"))",
    ]
  }
  var calibration: [String] {
    [
      "--calibration", "input_ids=\(modelPath("\(Self.encoder)/input_0_input_ids.npy"))",
      "--calibration", "attention_mask=\(modelPath("\(Self.encoder)/input_1_attention_mask.npy"))",
    ]
  }

  @Test func refusesBadThresholdGates() throws {
    let m = modelPath("\(Self.encoder).onnx")
    expectValidation("the skipped fraction S must be a number in [0, 1)") { try run([m, "--gate", "threshold:1"]) }
    expectValidation("the skipped fraction S must be a number in [0, 1)") { try run([m, "--gate", "threshold:-0.2"]) }
    expectValidation("needs calibration inputs") { try run([m, "--gate", "threshold:0.5"] + inputs) }
    expectValidation("--calibration is for --gate threshold:S") {
      try run([m, "--gate", "zero"] + inputs + calibration)
    }
    // A CNN whose only linear layer takes pooled features: calibrated, it has a Gemm to gate;
    // an empty calibration file is refused.
    let dir = try temporaryFolder()
    defer { try? FileManager.default.removeItem(at: dir) }
    let empty = dir.appendingPathComponent("empty.npy")
    try NPY.write(try Tensor(shape: [0, 3, 8, 8], floats: []), to: empty)
    do {
      try run([
        modelPath("Models/ops/cnn_small.onnx"), "--shape", "X=1x3x16x16", "--gate", "threshold:0.5", "--calibration",
        "X=\(empty.path)",
      ])
      Issue.record("an empty calibration set should fail")
    } catch let e as ExitCode {
      #expect(e == ExitCode(1))
    }
  }

  @Test func thresholdZeroEqualsONNXRuntime() throws {
    let dir = try temporaryFolder()
    defer { try? FileManager.default.removeItem(at: dir) }
    let m = modelPath("\(Self.encoder).onnx")
    try run([m, "--gate", "threshold:0", "--threads", "1", "--output-dir", dir.path] + inputs + calibration)
    let got = try NPY.read(contentsOf: dir.appendingPathComponent("last_hidden_state.npy"))
    let want = try NPY.read(
      contentsOf: URL(fileURLWithPath: modelPath("\(Self.encoder)/output_0_last_hidden_state.npy")))
    let scale = want.floats.map(abs).max() ?? 1
    #expect(got.shape == want.shape && maxAbsDiff(got, want) <= 1e-4 * scale)
    try run([m, "--gate", "threshold:0.5", "--threads", "1", "--output-dir", dir.path] + inputs + calibration)
    let gated = try NPY.read(contentsOf: dir.appendingPathComponent("last_hidden_state.npy"))
    #expect(gated.shape == want.shape && maxAbsDiff(gated, want) > 0)
  }
}
