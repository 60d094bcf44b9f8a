import Testing

@testable import Sparrow

/// FuseQLinearAdd: DequantizeLinear(a) + DequantizeLinear(b) → Add → (Relu) → QuantizeLinear
/// becomes one QLinearAdd step that computes the unfused graph's float32 operations, so its
/// integers equal the unfused graph's bit for bit (uint8 and int8 data, equal shapes on the
/// kernels, broadcast shapes on the plain loop); a zero scale is a one-line error naming the node.
@Suite struct FuseQLinearAddTests {
  static func scalarF(_ v: Float) -> Tensor { Tensor(checkedShape: [], storage: .float32([v])) }

  /// a, b (float) → Q → DQ → Add → (Relu) → Q → DQ → out.
  static func graph(bShape: [Int], relu: Bool, signedY: Bool, yScale: Float = 0.045) -> Graph {
    let constants: [String: Tensor] = [
      "as": scalarF(0.031), "az": Tensor(checkedShape: [], storage: .uint8([121])),
      "bs": scalarF(0.017), "bz": Tensor(checkedShape: [], storage: .int8([-7])),
      "ys": scalarF(yScale), "yz": Tensor(checkedShape: [], storage: signedY ? .int8([5]) : .uint8(relu ? [0] : [128])),
    ]
    var nodes = [
      Node(name: "qa", opType: "QuantizeLinear", inputs: ["a", "as", "az"], outputs: ["aq"]),
      Node(name: "dqa", opType: "DequantizeLinear", inputs: ["aq", "as", "az"], outputs: ["af"]),
      Node(name: "qb", opType: "QuantizeLinear", inputs: ["b", "bs", "bz"], outputs: ["bq"]),
      Node(name: "dqb", opType: "DequantizeLinear", inputs: ["bq", "bs", "bz"], outputs: ["bf"]),
      Node(name: "add", opType: "Add", inputs: ["af", "bf"], outputs: [relu ? "sum" : "act"]),
    ]
    if relu { nodes.append(Node(name: "relu", opType: "Relu", inputs: ["sum"], outputs: ["act"])) }
    nodes += [
      Node(name: "qy", opType: "QuantizeLinear", inputs: ["act", "ys", "yz"], outputs: ["yq"]),
      Node(name: "dqy", opType: "DequantizeLinear", inputs: ["yq", "ys", "yz"], outputs: ["out"]),
    ]
    return Graph(
      inputs: [
        ValueInfo(name: "a", dtype: .float32, shape: [2, 3, 5, 7].map { .fixed($0) }),
        ValueInfo(name: "b", dtype: .float32, shape: bShape.map { .fixed($0) }),
      ],
      outputs: [ValueInfo(name: "out")], nodes: nodes, constants: constants, opset: 13)
  }

  @Test(arguments: [[2, 3, 5, 7], [1, 3, 1, 7]], [false, true])
  func fusedEqualsTheUnfusedGraph(_ bShape: [Int], _ relu: Bool) throws {
    for signedY in [false, true] {
      let g = Self.graph(bShape: bShape, relu: relu, signedY: signedY)
      let fused = try Model(graph: g)
      #expect(fused.graph.nodes.contains { $0.opType == "QLinearAdd" })
      #expect(!fused.graph.nodes.contains { $0.opType == "Add" || $0.opType == "Relu" })
      let plain = try Model(graph: g, optimize: false)
      var rng = SeededRNG(seed: 3)
      let a = try Tensor(shape: [2, 3, 5, 7], floats: (0..<210).map { _ in rng.float() * 4 })
      let b = try Tensor(shape: bShape, floats: (0..<bShape.reduce(1, *)).map { _ in rng.float() * 2 })
      let got = try fused.run(["a": a, "b": b])["out"]!.floats
      let ref = try plain.run(["a": a, "b": b])["out"]!.floats
      #expect(got == ref, "relu \(relu) signed \(signedY) b \(bShape)")
      #expect(Set(ref).count > 20, "the test's scales give a trivial output")
    }
  }

  @Test func zeroScaleIsAnErrorNamingTheNode() throws {
    let g = Self.graph(bShape: [2, 3, 5, 7], relu: false, signedY: false, yScale: 0)
    let a = try Tensor(shape: [2, 3, 5, 7], floats: Array(repeating: 0.5, count: 210))
    #expect {
      _ = try Model(graph: g).run(["a": a, "b": a])
    } throws: { error in
      "\(error)".contains("scale") && "\(error)".contains("add") && !"\(error)".contains("\n")
    }
  }

  /// FuseQDQMaxPool: DQ → MaxPool → Q with shared parameters runs MaxPool on the bytes, equal to
  /// the unfused graph (uint8 and int8, padded 3x3 stride 2 as ResNet's stem; a narrow plane,
  /// and one whose rows are long enough for the byte-max loops' vectors, strides 1 and 2).
  @Test(arguments: [false, true], [([1, 3, 11, 10], 2), ([1, 2, 23, 131], 2), ([2, 2, 9, 77], 1)])
  func maxPoolOnBytesEqualsTheUnfusedGraph(_ signed: Bool, _ shape: ([Int], Int)) throws {
    let zero = Tensor(checkedShape: [], storage: signed ? .int8([-9]) : .uint8([13]))
    let (xShape, stride) = shape
    let g = Graph(
      inputs: [ValueInfo(name: "x", dtype: .float32, shape: xShape.map { .fixed($0) })],
      outputs: [ValueInfo(name: "out")],
      nodes: [
        Node(name: "qx", opType: "QuantizeLinear", inputs: ["x", "s", "z"], outputs: ["xq"]),
        Node(name: "dqx", opType: "DequantizeLinear", inputs: ["xq", "s", "z"], outputs: ["xf"]),
        Node(
          name: "pool", opType: "MaxPool", inputs: ["xf"], outputs: ["p"],
          attributes: [
            "kernel_shape": .ints([3, 3]), "strides": .ints([Int64(stride), Int64(stride)]),
            "pads": .ints([1, 1, 1, 1]),
          ]),
        Node(name: "qp", opType: "QuantizeLinear", inputs: ["p", "s", "z"], outputs: ["pq"]),
        Node(name: "dqp", opType: "DequantizeLinear", inputs: ["pq", "s", "z"], outputs: ["out"]),
      ],
      constants: ["s": Self.scalarF(0.013), "z": zero], opset: 13)
    let fused = try Model(graph: g)
    #expect(!fused.graph.nodes.contains { $0.opType == "QuantizeLinear" && $0.name == "qp" })
    var rng = SeededRNG(seed: 9)
    let x = try Tensor(shape: xShape, floats: (0..<xShape.reduce(1, *)).map { _ in rng.float() * 2 })
    let got = try fused.run(["x": x])["out"]!.floats
    let ref = try Model(graph: g, optimize: false).run(["x": x])["out"]!.floats
    #expect(got == ref)
  }
}
