import Foundation
import Testing

@testable import Sparrow

/// `Quantizer` (sparrow quantize): the QDQ model it writes runs, stays close to the float model,
/// keeps pruned zeros exactly zero, and bad requests are refused with a message. The same files
/// against ONNX Runtime: Tests/python/check_quant.py.
@Suite struct QuantizerTests {
  static let dir = ModelFiles.root.appendingPathComponent("ops")

  func load(_ name: String) throws -> (Graph, Tensor) {
    let g = try ONNXImporter.load(contentsOf: Self.dir.appendingPathComponent("\(name).onnx"))
    let x = try NPY.read(contentsOf: Self.dir.appendingPathComponent("\(name)/input_0_X.npy"))
    return (g, x)
  }

  func run(_ g: Graph, _ x: Tensor) throws -> [Float] {
    // One format and one thread: two plans of one graph compute the same sums (auto would time
    // the formats per plan and may choose differently).
    try Model(graph: g, optimize: false, options: PlanOptions(threads: 1, format: .fixed(.dense))).run(["X": x])[
      "logits"]!.floats
  }

  @Test(arguments: [CalibrationMethod.minMax, .percentile(99.9)])
  func quantizedModelStaysCloseToFloat(method: CalibrationMethod) throws {
    let (g, x) = try load("cnn_small")
    var o = QuantizeOptions()
    o.method = method
    let (q, report) = try Quantizer.quantize(g, calibration: [["X": x]], options: o)
    #expect(report.layers.count == 4)  // three Convs and the Gemm
    #expect(report.layers.allSatisfy { $0.weightScales > 1 })  // per channel (opset 13)
    let ops = q.nodes.map(\.opType)
    #expect(ops.filter { $0 == "QuantizeLinear" }.count == 4)
    #expect(ops.filter { $0 == "DequantizeLinear" }.count == 4 + 4 + 4)  // activations, weights, biases
    // No float weight is left behind.
    for l in g.nodes where ["Conv", "Gemm"].contains(l.opType) { #expect(q.constants[l.inputs[1]] == nil) }
    let want = try run(g, x), got = try run(q, x)
    let scale = want.map(abs).max()!
    let worst = zip(want, got).map { abs($0 - $1) }.max()!
    #expect(worst <= 0.05 * scale, "int8 logits off by \(worst) of \(scale)")
    // Through export and import, as the file is written.
    let again = try ONNXImporter.decode(try ONNXExporter.encode(q))
    #expect(try run(again, x) == got)
  }

  /// Symmetric int8 weights: a pruned (zero) weight is exactly zero after quantization.
  @Test func prunedZerosStayZero() throws {
    let (g, x) = try load("cnn_small_pruned")
    let (q, report) = try Quantizer.quantize(g, calibration: [["X": x]])
    for l in report.layers { #expect(l.zerosAfter >= l.zerosBefore, "\(l.name)") }
    for n in g.nodes where n.opType == "Conv" {
      let w = g.constants[n.inputs[1]]!.floats
      let wq = q.constants[n.inputs[1] + "_quantized"]!.floats
      for (a, b) in zip(w, wq) where a == 0 { #expect(b == 0) }
    }
  }

  @Test func perTensorBelowOpset13() throws {
    var (g, x) = try load("cnn_small")
    g.opset = 12
    let (_, report) = try Quantizer.quantize(g, calibration: [["X": x]])
    #expect(report.layers.allSatisfy { $0.weightScales == 1 })
    #expect(report.skipped.contains { $0.contains("opset 12") })
  }

  @Test func activationParameters() {
    let (s, z) = Quantizer.activationParams(lo: -1, hi: 3, type: .uint8)
    #expect(abs(s - 4 / 255) < 1e-7)
    #expect(z == 64)
    // A range that excludes zero is widened to include it; an empty range gets scale 1.
    #expect(Quantizer.activationParams(lo: 2, hi: 4, type: .uint8).1 == 0)
    #expect(Quantizer.activationParams(lo: 0, hi: 0, type: .uint8) == (1, 0))
    let (si, zi) = Quantizer.activationParams(lo: -2, hi: 1, type: .int8)
    #expect(abs(si - 2 / 127) < 1e-7 && zi == 0)
  }

  @Test func badRequestsAreRefused() throws {
    let (g, x) = try load("cnn_small")
    expectError(QuantizeError.self, containing: "no calibration inputs") {
      _ = try Quantizer.quantize(g, calibration: [])
    }
    expectError(ModelError.self, containing: "X") { _ = try Quantizer.quantize(g, calibration: [["Y": x]]) }
    var o = QuantizeOptions()
    o.ops = ["Relu"]
    expectError(QuantizeError.self, containing: "no layer to quantize") {
      _ = try Quantizer.quantize(g, calibration: [["X": x]], options: o)
    }
    expectError(QuantizeError.self, containing: "percentile:P") { _ = try CalibrationMethod(parsing: "percentile:30") }
    expectError(QuantizeError.self, containing: "minmax") { _ = try CalibrationMethod(parsing: "entropy") }
    #expect(try CalibrationMethod(parsing: "percentile:99.99") == .percentile(99.99))
  }
}
