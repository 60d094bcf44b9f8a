import Testing

@testable import Sparrow

/// A batch of small images runs as one multiply (ConvStep.runBatched); each image of it must
/// equal the same image run alone (batch 1 runs image by image, checked against ONNX Runtime by
/// ModelVsORTTests), in every format.
@Suite struct BatchedConvTests {
  struct Case: Sendable, CustomStringConvertible {
    var c: Int, m: Int, hw: Int, k: Int, stride: Int, pad: Int, groups: Int
    var description: String { "\(c)->\(m) \(hw)x\(hw) k\(k) s\(stride) p\(pad) g\(groups)" }
  }

  static let cases = [
    Case(c: 8, m: 16, hw: 9, k: 3, stride: 1, pad: 1, groups: 1),
    Case(c: 6, m: 10, hw: 8, k: 1, stride: 1, pad: 0, groups: 1),
    Case(c: 8, m: 12, hw: 11, k: 3, stride: 2, pad: 1, groups: 2),
    Case(c: 4, m: 8, hw: 7, k: 1, stride: 2, pad: 0, groups: 1),
  ]

  func graph(_ t: Case, batch: Int, weights: [Float], bias: [Float]) throws -> Graph {
    Graph(
      inputs: [ValueInfo(name: "X", dtype: .float32, shape: [batch, t.c, t.hw, t.hw].map { .fixed($0) })],
      outputs: [ValueInfo(name: "Y")],
      nodes: [
        Node(
          name: "conv", opType: "Conv", inputs: ["X", "W", "B"], outputs: ["C"],
          attributes: [
            "kernel_shape": .ints([Int64(t.k), Int64(t.k)]), "strides": .ints([Int64(t.stride), Int64(t.stride)]),
            "pads": .ints(Array(repeating: Int64(t.pad), count: 4)), "group": .int(Int64(t.groups)),
          ]),
        Node(name: "relu", opType: "Relu", inputs: ["C"], outputs: ["Y"]),
      ],
      constants: [
        "W": try Tensor(shape: [t.m, t.c / t.groups, t.k, t.k], floats: weights),
        "B": try Tensor(shape: [t.m], floats: bias),
      ], opset: 13)
  }

  @Test(arguments: cases, [WeightFormat.Kind.dense, .packed, .csr])
  func batchEqualsImageByImage(_ t: Case, format: WeightFormat.Kind) throws {
    var rng = SeededRNG(seed: 11)
    // Half the weights zero, so the sparse formats have something to skip.
    let weights = (0..<(t.m * t.c / t.groups * t.k * t.k)).map { i in i % 2 == 0 ? 0 : rng.float() }
    let bias = (0..<t.m).map { _ in rng.float() }
    let batch = 3
    let x = (0..<(batch * t.c * t.hw * t.hw)).map { _ in rng.float() }
    let options = PlanOptions(threads: 1, format: .fixed(format))
    let batched = try Model(graph: try graph(t, batch: batch, weights: weights, bias: bias), options: options)
    let single = try Model(graph: try graph(t, batch: 1, weights: weights, bias: bias), options: options)
    let all = try batched.run(["X": try Tensor(shape: [batch, t.c, t.hw, t.hw], floats: x)])["Y"]!
    let per = all.count / batch
    for b in 0..<batch {
      let xi = Array(x[(b * t.c * t.hw * t.hw)..<((b + 1) * t.c * t.hw * t.hw)])
      let one = try single.run(["X": try Tensor(shape: [1, t.c, t.hw, t.hw], floats: xi)])["Y"]!.floats
      let got = Array(all.floats[(b * per)..<((b + 1) * per)])
      let worst = zip(got, one).map { abs($0 - $1) }.max() ?? 0
      #expect(worst <= 1e-5, "\(t) \(format) image \(b): max |batched - alone| = \(worst)")
    }
  }
}
