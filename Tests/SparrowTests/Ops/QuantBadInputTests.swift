import Foundation
import Testing

@testable import Sparrow

/// Bad quantization parameters (issue 19): scales of zero, negative or NaN, an int32 zero point
/// other than 0, int4 and float8 tensors. Each is one line naming the node, never a crash.
/// (Per-axis lengths that do not match are QuantOpsTests' `quantizeRefusesWhatItCannotRun`.)
@Suite struct QuantBadInputTests: SingleNodeGraphs {
  @Test(arguments: [Float(0), -0.5, .nan, .infinity])
  func scalesMustBePositiveAndFinite(_ bad: Float) throws {
    let s = Tensor(checkedShape: [], storage: .float32([bad]))
    let z = Tensor(checkedShape: [], storage: .uint8([0]))
    expectPlanError(
      graph(
        "QuantizeLinear", inputs: [input("X", .float32, [4])], constants: ["s": s, "z": z], nodeInputs: ["X", "s", "z"]),
      containing: "QuantizeLinear 'n': scale (input 1) holds \(bad)")
    expectPlanError(
      graph(
        "DequantizeLinear", inputs: [input("X", .uint8, [4])], constants: ["s": s, "z": z], nodeInputs: ["X", "s", "z"]),
      containing: "DequantizeLinear 'n': scale (input 1)")
    // A per-channel weight scale of QLinearConv, one bad value among good ones.
    let params: [String: Tensor] = [
      "xs": Tensor(checkedShape: [], storage: .float32([0.1])), "xz": z,
      "w": Tensor(checkedShape: [2, 1, 1, 1], storage: .int8([1, 2])),
      "ws": Tensor(checkedShape: [2], storage: .float32([0.1, bad])),
      "wz": Tensor(checkedShape: [2], storage: .int8([0, 0])), "ys": Tensor(checkedShape: [], storage: .float32([0.1])),
      "yz": z,
    ]
    expectPlanError(
      graph(
        "QLinearConv", inputs: [input("X", .uint8, [1, 1, 2, 2])], constants: params,
        nodeInputs: ["X", "xs", "xz", "w", "ws", "wz", "ys", "yz"]),
      containing: "QLinearConv 'n': scale (input 4) holds \(bad)")
  }

  @Test func int32DataNeedsZeroPointZero() {
    expectPlanError(
      graph(
        "DequantizeLinear", inputs: [input("X", .int32, [4])],
        constants: [
          "s": Tensor(checkedShape: [], storage: .float32([0.5])), "z": Tensor(checkedShape: [], storage: .int32([3])),
        ], nodeInputs: ["X", "s", "z"]),
      containing: "zero point of int32 data must be 0")
  }

  /// An int4 or float8 weight behind a DequantizeLinear: the import error names the node.
  @Test(arguments: [(Int32(22), "INT4"), (21, "UINT4"), (17, "FLOAT8E4M3FN"), (19, "FLOAT8E5M2")])
  func narrowTypesNameTheNode(_ code: Int32, _ name: String) {
    let builder = ONNXBadModelTests()
    let data = builder.model { g in
      var w = Onnx_TensorProto()
      w.name = "wq"
      w.dataType = code
      w.dims = [2]
      w.rawData = Data([0x21])
      var s = Onnx_TensorProto()
      s.name = "ws"
      s.dataType = 1
      s.floatData = [0.5]
      g.initializer += [w, s]
      var dq = builder.node("DequantizeLinear", ["wq", "ws"], ["wf"])
      dq.name = "dq"
      g.node.insert(dq, at: 0)
    }
    do {
      _ = try ONNXImporter.decode(data)
      Issue.record("accepted a \(name) tensor")
    } catch {
      #expect(error.message.contains("DequantizeLinear 'dq'") && error.message.contains(name), "\(error.message)")
      #expect(!error.message.contains("\n"))
    }
  }
}
