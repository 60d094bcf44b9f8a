import Testing

@testable import Sparrow

/// FoldBatchNorm where the BatchNorm's parameters reach it through Identity nodes (torch's
/// exporter writes initializers equal to another as `Identity(initializer)`: the digits model's
/// projection BatchNorms kept a step of their own). Optimised, the block is one Conv (+ Relu
/// fused) and computes what the unoptimised graph computes.
@Suite struct FoldBatchNormPassTests {
  static func block(identityParameters: Bool) throws -> Graph {
    var rng = SeededRNG(seed: 17)
    let (c, m) = (3, 5)
    var nodes = [
      Node(name: "conv", opType: "Conv", inputs: ["x", "w"], outputs: ["y"], attributes: ["strides": .ints([2, 2])]),
      Node(
        name: "bn", opType: "BatchNormalization",
        inputs: [
          "y", identityParameters ? "scale_alias" : "scale", identityParameters ? "shift_alias" : "shift", "mean",
          "var",
        ],
        outputs: ["z"]),
      Node(name: "relu", opType: "Relu", inputs: ["z"], outputs: ["out"]),
    ]
    if identityParameters {
      nodes.insert(Node(name: "id0", opType: "Identity", inputs: ["scale"], outputs: ["scale_alias"]), at: 0)
      nodes.insert(Node(name: "id1", opType: "Identity", inputs: ["shift"], outputs: ["shift_alias"]), at: 0)
    }
    return Graph(
      inputs: [ValueInfo(name: "x", dtype: .float32, shape: [.fixed(2), .fixed(c), .fixed(6), .fixed(7)])],
      outputs: [ValueInfo(name: "out")], nodes: nodes,
      constants: [
        "w": try Tensor(shape: [m, c, 1, 1], floats: (0..<(m * c)).map { _ in rng.float() * 2 }),
        "scale": try Tensor(shape: [m], floats: (0..<m).map { _ in 0.5 + rng.float() }),
        "shift": try Tensor(shape: [m], floats: (0..<m).map { _ in rng.float() }),
        "mean": try Tensor(shape: [m], floats: (0..<m).map { _ in rng.float() * 0.3 }),
        "var": try Tensor(shape: [m], floats: (0..<m).map { _ in 0.2 + abs(rng.float()) }),
      ], opset: 13)
  }

  static func run(_ g: Graph, optimize: Bool) throws -> [Float] {
    var rng = SeededRNG(seed: 9)
    let x = try Tensor(shape: [2, 3, 6, 7], floats: (0..<252).map { _ in rng.float() * 4 - 2 })
    let out = try Model(graph: g, optimize: optimize, options: PlanOptions(threads: 1, format: .fixed(.dense))).run([
      "x": x
    ])
    return try #require(out["out"]).floats
  }

  @Test(arguments: [false, true]) func foldsThroughIdentity(identityParameters: Bool) throws {
    let g = try Self.block(identityParameters: identityParameters)
    let opt = try Passes.optimize(g)
    #expect(opt.nodes.map(\.opType) == ["Conv"])
    #expect(opt.nodes[0].epilogue.bounds.0 == 0)
    let (a, b) = (try Self.run(g, optimize: false), try Self.run(g, optimize: true))
    let scale = a.map(abs).max()!
    #expect(scale > 0)
    #expect(!a.contains(where: \.isNaN) && !b.contains(where: \.isNaN))
    #expect(zip(a, b).allSatisfy { abs($0 - $1) <= 1e-5 * scale })
  }
}
