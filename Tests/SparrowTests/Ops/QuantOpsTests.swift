import Testing

@testable import Sparrow

/// Quantized ops (QuantizeLinear ... QLinearConv) on bad models and edge values. Their outputs
/// on good models are checked against ONNX Runtime by ModelVsORTTests (Models/ops/quantize_*,
/// dequantize_*, *_integer*, qlinear_*, qdq_conv_relu).
@Suite struct QuantOpsTests: SingleNodeGraphs {
  func scale(_ v: [Float]) throws -> Tensor { try Tensor(shape: v.count == 1 ? [] : [v.count], floats: v) }

  @Test func quantizeRefusesWhatItCannotRun() throws {
    let x = input("X", .float32, [2, 3])
    // A per-axis scale before opset 13.
    expectPlanError(
      graph("QuantizeLinear", inputs: [x], constants: ["s": try scale([1, 2, 3])], nodeInputs: ["X", "s"], opset: 10),
      containing: "needs opset 13")
    // A scale whose length is not the axis size.
    expectPlanError(
      graph("QuantizeLinear", inputs: [x], constants: ["s": try scale([1, 2])], nodeInputs: ["X", "s"]),
      containing: "2 values for axis 1 of size 3")
    // Blocked quantization (opset 21).
    expectPlanError(
      graph(
        "QuantizeLinear", inputs: [x], constants: ["s": try scale([1])], nodeInputs: ["X", "s"],
        attributes: ["block_size": .int(2)], opset: 21), containing: "block_size")
    // A zero point of another type than the output.
    expectPlanError(
      graph(
        "QuantizeLinear", inputs: [x],
        constants: ["s": try scale([1]), "z": try Tensor(shape: [], storage: .uint8([0]))],
        nodeInputs: ["X", "s", "z"],
        attributes: ["output_dtype": .int(3)], opset: 21), containing: "differs from the zero point")
    // Integer x.
    expectPlanError(
      graph(
        "QuantizeLinear", inputs: [input("X", .int64, [2])], constants: ["s": try scale([1])], nodeInputs: ["X", "s"]),
      containing: "float32")
  }

  @Test func integerProductsRefuseBadOperands() throws {
    let a = input("A", .uint8, [2, 3])
    expectPlanError(
      graph("MatMulInteger", inputs: [a, input("B", .float32, [3, 2])], nodeInputs: ["A", "B"]),
      containing: "int8 or uint8")
    expectPlanError(
      graph("MatMulInteger", inputs: [a, input("B", .uint8, [4, 2])], nodeInputs: ["A", "B"]), containing: "inner sizes"
    )
    expectPlanError(
      graph(
        "MatMulInteger", inputs: [a, input("B", .uint8, [3, 2])],
        constants: ["zb": try Tensor(shape: [3], storage: .uint8([1, 2, 3]))], nodeInputs: ["A", "B", "", "zb"]),
      containing: "expected one value or 2")
    expectPlanError(
      graph("QLinearMatMul", inputs: [a, input("B", .uint8, [3, 2])], nodeInputs: ["A", "", "", "B"]),
      containing: "is required")
    expectPlanError(
      graph(
        "ConvInteger", inputs: [input("X", .uint8, [1, 3, 4, 4]), input("W", .uint8, [2, 2, 3, 3])],
        nodeInputs: ["X", "W"]),
      containing: "does not fit 3 input channels")
  }

  /// Halves round to even, both ends saturate, NaN gives the zero point (ORT's MLAS does the same).
  @Test func quantizeRoundsHalfToEvenAndSaturates() throws {
    let g = graph(
      "QuantizeLinear", inputs: [input("X", .float32, [8])],
      constants: ["s": try scale([1]), "z": try Tensor(shape: [], storage: .int8([1]))], nodeInputs: ["X", "s", "z"])
    let x = try Tensor(shape: [8], floats: [0.5, 1.5, 2.5, -0.5, -1.5, 1000, -1000, .nan])
    let y = try Session(plan: try Planner.plan(g)).run(["X": x])["Y"]
    #expect(y?.dtype == .int8)
    #expect(y?.floats == [1, 3, 3, 1, -1, 127, -128, 1])
  }

  /// An all-zero input: scale 0 and zero point 0, no division by zero.
  @Test func dynamicQuantizeOfZeros() throws {
    let g = graph(
      "DynamicQuantizeLinear", inputs: [input("X", .float32, [4])], nodeInputs: ["X"], outputs: ["Y", "S", "Z"],
      opset: 11)
    let out = try Session(plan: try Planner.plan(g)).run(["X": try Tensor(shape: [4], floats: [0, 0, 0, 0])])
    #expect(out["Y"]?.floats == [0, 0, 0, 0])
    #expect(out["S"]?.floats == [0])
    #expect(out["Z"]?.floats == [0])
  }
}
