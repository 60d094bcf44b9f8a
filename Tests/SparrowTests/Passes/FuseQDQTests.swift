import Testing

@testable import Sparrow

/// FuseQDQ: QDQ groups around Conv, Gemm and MatMul become QLinearConv/QLinearMatMul nodes on
/// the int8 kernels. The reference is the same graph unoptimised, each op as written in float32
/// between the pairs (that path equals ONNX Runtime's plain run: ModelVsORTTests, check_quant.py).
/// The fused step rounds acc · (x_scale · w_scale / y_scale) once where the graph rounds a float
/// sum, so a value may be one quantum (y_scale) off, never more, and only a few are. The int8
/// step of QLinearConv/QLinearMatMul equals the plain integer loop bit for bit.
@Suite struct FuseQDQTests {
  enum Layer: String, CaseIterable, Sendable {
    case conv3x3, conv1x1, gemm, matmul, convInt8Activations
    /// No QuantizeLinear after the Relu (as `sparrow quantize` writes): a float32 output.
    case conv3x3FloatOut, gemmFloatOut
  }

  static func scalarF(_ v: Float) -> Tensor { Tensor(checkedShape: [], storage: .float32([v])) }

  /// x (float) → Q → DQ → layer(DQ(int8 weights per channel), DQ(int32 bias)) → Relu → Q → DQ.
  static func graph(_ layer: Layer, weightZero: Int8 = 0, seed: UInt64 = 7) -> (Graph, [Int]) {
    var rng = SeededRNG(seed: seed)
    let signedX = layer == .convInt8Activations
    let xShape: [Int], wShape: [Int], m: Int, k: Int
    var attrs: [String: Attribute] = [:]
    var op = "Conv"
    switch layer {
    case .conv3x3, .convInt8Activations, .conv3x3FloatOut:
      (xShape, wShape, m, k) = ([2, 5, 9, 9], [6, 5, 3, 3], 6, 45)
      attrs = ["pads": .ints([1, 1, 1, 1]), "strides": .ints([2, 2]), "kernel_shape": .ints([3, 3])]
    case .conv1x1: (xShape, wShape, m, k) = ([1, 7, 5, 6], [9, 7, 1, 1], 9, 7)
    case .gemm, .gemmFloatOut:
      (xShape, wShape, m, k) = ([3, 10], [5, 10], 5, 10)
      (op, attrs) = ("Gemm", ["transB": .int(1)])
    case .matmul:
      (xShape, wShape, m, k) = ([2, 3, 10], [10, 4], 4, 10)
      op = "MatMul"
    }
    let w = (0..<wShape.reduce(1, *)).map { _ in Int8.random(in: -127...127, using: &rng) }
    let ws = (0..<m).map { _ in Float.random(in: 0.002...0.004, using: &rng) }
    let xs: Float = 2.0 / 255
    let b = (0..<m).map { _ in Int32.random(in: -3000...3000, using: &rng) }
    let ys: Float = Float(k).squareRoot() * 0.4 / 127
    var constants: [String: Tensor] = [
      "xs": scalarF(xs), "xz": Tensor(checkedShape: [], storage: signedX ? .int8([3]) : .uint8([128])),
      "w": Tensor(checkedShape: wShape, storage: .int8(w)), "ws": Tensor(checkedShape: [m], storage: .float32(ws)),
      "wz": Tensor(checkedShape: [m], storage: .int8(Array(repeating: weightZero, count: m))),
      "ys": scalarF(ys), "yz": Tensor(checkedShape: [], storage: .uint8([0])),
    ]
    var nodes = [
      Node(name: "qx", opType: "QuantizeLinear", inputs: ["x", "xs", "xz"], outputs: ["xq"]),
      Node(name: "dqx", opType: "DequantizeLinear", inputs: ["xq", "xs", "xz"], outputs: ["xf"]),
      Node(
        name: "dqw", opType: "DequantizeLinear", inputs: ["w", "ws", "wz"], outputs: ["wf"],
        attributes: ["axis": .int(layer == .matmul ? 1 : 0)]),
    ]
    var layerInputs = ["xf", "wf"]
    if layer != .matmul {
      constants["b"] = Tensor(checkedShape: [m], storage: .int32(b))
      constants["bs"] = Tensor(checkedShape: [m], storage: .float32(ws.map { xs * $0 }))
      nodes.append(
        Node(
          name: "dqb", opType: "DequantizeLinear", inputs: ["b", "bs"], outputs: ["bf"], attributes: ["axis": .int(0)]))
      layerInputs.append("bf")
    }
    let floatOut = layer == .conv3x3FloatOut || layer == .gemmFloatOut
    nodes += [
      Node(name: "layer", opType: op, inputs: layerInputs, outputs: ["y"], attributes: attrs),
      Node(name: "relu", opType: "Relu", inputs: ["y"], outputs: [floatOut ? "out" : "yr"]),
    ]
    if !floatOut {
      nodes += [
        Node(name: "qy", opType: "QuantizeLinear", inputs: ["yr", "ys", "yz"], outputs: ["yq"]),
        Node(name: "dqy", opType: "DequantizeLinear", inputs: ["yq", "ys", "yz"], outputs: ["out"]),
      ]
    }
    let g = Graph(
      inputs: [ValueInfo(name: "x", dtype: .float32, shape: xShape.map { .fixed($0) })],
      outputs: [ValueInfo(name: "out")], nodes: nodes, constants: constants, opset: 13)
    return (g, xShape)
  }

  /// Each convolution once on the GEMM path and once on the direct kernel (5 channels: planes of
  /// 8, zero-padded weights), forced; signed activations and the float output through both.
  static let algorithmCases: [(Layer, ConvAlgorithm)] = Layer.allCases.flatMap { l -> [(Layer, ConvAlgorithm)] in
    [.conv3x3, .convInt8Activations, .conv3x3FloatOut].contains(l) ? [(l, .im2col), (l, .direct)] : [(l, .measure)]
  }

  @Test(arguments: algorithmCases)
  func fusedEqualsTheQDQGraphWithinOneQuantum(_ layer: Layer, _ algorithm: ConvAlgorithm) throws {
    let (g, shape) = Self.graph(layer)
    var options = PlanOptions()
    options.convAlgorithm = algorithm
    let fused = try Model(graph: g, options: options)
    if algorithm != .measure {
      let formats = try fused.plan(shapes: ["x": shape]).layers.map(\.format)
      #expect(formats == [algorithm == .direct ? "int8-direct" : "int8"], "\(layer) \(algorithm): \(formats)")
    }
    #expect(fused.graph.nodes.contains { $0.opType.hasPrefix("QLinear") })
    #expect(!fused.graph.nodes.contains { ["Conv", "Gemm", "MatMul", "Relu"].contains($0.opType) })
    let plain = try Model(graph: g, optimize: false)
    var rng = SeededRNG(seed: 11)
    let x = try Tensor(shape: shape, floats: (0..<shape.reduce(1, *)).map { _ in rng.float() })
    let got = try fused.run(["x": x])["out"]!.floats, ref = try plain.run(["x": x])["out"]!.floats
    #expect(ref.contains { $0 > 0 } && ref.contains { $0 == 0 }, "the test's scales give a trivial output")
    if layer == .conv3x3FloatOut || layer == .gemmFloatOut {
      // Dequantized: the same real numbers summed in another order (DESIGN's bound).
      let scale = ref.map(abs).max() ?? 1
      #expect(zip(got, ref).allSatisfy { abs($0 - $1) <= 1e-4 * scale }, "\(layer): float output differs")
      #expect(fused.graph.nodes.contains { $0.epilogue.dequantizedOutput })
      return
    }
    let ys = g.constants["ys"]!.floats[0]
    let off = zip(got, ref).filter { $0 != $1 }
    #expect(got.count == ref.count)
    #expect(off.allSatisfy { abs($0 - $1) <= ys * 1.001 }, "\(layer): a value is more than one quantum off")
    #expect(off.count * 20 <= got.count, "\(layer): \(off.count) of \(got.count) values differ")
  }

  /// Weights with a nonzero zero point are not for the kernels: nothing fuses, same results.
  @Test func asymmetricWeightsStayUnfused() throws {
    let (g, shape) = Self.graph(.conv3x3, weightZero: 2)
    let fused = try Model(graph: g)
    #expect(!fused.graph.nodes.contains { $0.opType.hasPrefix("QLinear") })
    let x = try Tensor(shape: shape, floats: (0..<shape.reduce(1, *)).map { Float($0 % 17) / 9 - 0.9 })
    #expect(
      try fused.run(["x": x])["out"]!.floats == (try Model(graph: g, optimize: false).run(["x": x])["out"]!.floats))
  }

  enum KernelCase: String, CaseIterable, Sendable {
    /// 6 channels: the per-tap im2col; 8 (and 2 groups of 4): the tap-major one, the weights'
    /// columns permuted (strides 2 x 1, two images, rows long enough for the SIMD interleave);
    /// 150 x 150 outputs: more packed X than one band (QLinearConvKernelStep.bandBytes), so rows
    /// are packed and multiplied a band at a time (two images, 2 groups of 4 channels: 4 bands
    /// of up to 48 rows each, the last a partial one); a strided 1x1
    /// kernel on 8 channels: the per-tap packer (tap-major is not used for 1x1 kernels).
    /// Direct: the direct convolution (Kernels/qconv, the active ISA's entry) forced on the
    /// tap-major planes, 70 output channels (a 64-channel panel and a partial one), with strides
    /// 2 x 1 and 2 groups, with a dilated 5 x 3 kernel, and on two threads (positions split).
    case matmul, conv, convTapMajor, convTapMajorGrouped, convTapMajorBanded, convPointwiseStrided
    /// Channels not a multiple of 4, padded to groups of 4 with zero weights: a 3-channel 7x7
    /// stride-2 stem (two images) and 6 channels (a group of 4 and one of 2).
    /// 2 groups of 6 channels (each padded to 8).
    case directStrided, directGrouped, directDilated5x3, directTwoThreads, directStem, directSixChannels
    case directGroupsOfSix
    var direct: Bool { rawValue.hasPrefix("direct") }
  }

  /// QLinearConv and QLinearMatMul with constant weights (int8 kernels) against the same nodes
  /// with the weights as graph inputs (the plain integer loop): equal bit for bit.
  @Test(arguments: KernelCase.allCases)
  func kernelStepEqualsTheIntegerLoop(_ kind: KernelCase) throws {
    var rng = SeededRNG(seed: 5)
    let matmul = kind == .matmul
    let (xShape, wShape): ([Int], [Int]) =
      switch kind {
      case .matmul: ([4, 19], [19, 11])
      case .conv: ([1, 6, 7, 7], [10, 6, 3, 3])
      case .convTapMajor: ([2, 8, 9, 37], [10, 8, 3, 3])
      case .convTapMajorGrouped: ([1, 8, 6, 40], [10, 4, 3, 3])
      case .convTapMajorBanded: ([2, 8, 150, 150], [10, 4, 3, 3])
      case .convPointwiseStrided: ([2, 8, 21, 40], [10, 8, 1, 1])
      case .directStrided: ([2, 12, 9, 23], [70, 12, 3, 3])
      case .directGrouped: ([1, 16, 11, 13], [70, 8, 3, 3])
      case .directDilated5x3: ([1, 8, 14, 17], [70, 8, 5, 3])
      case .directTwoThreads: ([1, 4, 13, 29], [70, 4, 3, 3])
      case .directStem: ([2, 3, 23, 30], [70, 3, 7, 7])
      case .directSixChannels: ([1, 6, 9, 11], [70, 6, 3, 3])
      case .directGroupsOfSix: ([2, 12, 9, 10], [70, 6, 3, 3])
      }
    var attributes: [String: Attribute] = ["pads": .ints([1, 0, 1, 2])]
    if [.convTapMajor, .convTapMajorGrouped, .directStrided, .directGrouped].contains(kind) {
      attributes["strides"] = .ints([2, 1])
    }
    if kind == .convPointwiseStrided { attributes["strides"] = .ints([2, 2]) }
    if [.convTapMajorGrouped, .convTapMajorBanded, .directGrouped, .directGroupsOfSix].contains(kind) {
      attributes["group"] = .int(2)
    }
    if kind == .directDilated5x3 { attributes["dilations"] = .ints([2, 1]) }
    if kind == .directStem {
      attributes["strides"] = .ints([2, 2])
      attributes["pads"] = .ints([3, 3, 3, 2])
    }
    let m = matmul ? 11 : kind.direct ? 70 : 10
    let w = Tensor(
      checkedShape: wShape,
      storage: .int8((0..<wShape.reduce(1, *)).map { _ in Int8.random(in: -128...127, using: &rng) }))
    let x = Tensor(
      checkedShape: xShape,
      storage: .uint8((0..<xShape.reduce(1, *)).map { _ in UInt8.random(in: 0...255, using: &rng) }))
    let params: [String: Tensor] = [
      "xs": Self.scalarF(0.02), "xz": Tensor(checkedShape: [], storage: .uint8([100])),
      "ws": Tensor(checkedShape: [m], storage: .float32((0..<m).map { Float($0 + 1) * 0.001 })),
      "wz": Tensor(checkedShape: [m], storage: .int8(Array(repeating: 0, count: m))), "ys": Self.scalarF(0.05),
      "yz": Tensor(checkedShape: [], storage: .int8([-3])),
    ]
    func run(weightsConstant: Bool) throws -> Tensor {
      var constants = params
      var inputs = [ValueInfo(name: "x", dtype: .uint8, shape: xShape.map { .fixed($0) })]
      if weightsConstant {
        constants["w"] = w
      } else {
        inputs.append(ValueInfo(name: "w", dtype: .int8, shape: wShape.map { .fixed($0) }))
      }
      let g = Graph(
        inputs: inputs, outputs: [ValueInfo(name: "y")],
        nodes: [
          Node(
            name: "q", opType: matmul ? "QLinearMatMul" : "QLinearConv",
            inputs: ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz"], outputs: ["y"],
            attributes: matmul ? [:] : attributes)
        ], constants: constants, opset: 13)
      let feeds = weightsConstant ? ["x": x] : ["x": x, "w": w]
      // Forced either way: timed, a machine might take the direct kernel for every case.
      var options = PlanOptions(threads: kind == .directTwoThreads ? 2 : 1)
      options.convAlgorithm = kind.direct ? .direct : .im2col
      let model = try Model(graph: g, optimize: false, options: options)
      if weightsConstant && !matmul {
        let formats = try model.plan(shapes: ["x": xShape]).layers.map(\.format)
        #expect(formats == [kind.direct ? "int8-direct" : "int8"], "\(kind): \(formats)")
      }
      return try model.run(feeds)["y"]!
    }
    let fast = try run(weightsConstant: true), loop = try run(weightsConstant: false)
    #expect(fast.shape == loop.shape)
    #expect(fast.dtype == loop.dtype)
    let bad = zip(fast.int64s, loop.int64s).enumerated().first { $0.element.0 != $0.element.1 }
    #expect(bad == nil, "element \(bad?.offset ?? -1): \(bad.map { "\($0.element.0) vs \($0.element.1)" } ?? "")")
  }
}
