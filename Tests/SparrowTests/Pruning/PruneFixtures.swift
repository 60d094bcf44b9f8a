import Testing

@testable import Sparrow

/// Small graphs and weights for the pruner's tests; every check is computed here, independently
/// of the pruner's own helpers.
enum PruneFixtures {
  /// `n` values whose magnitudes are all different (a shuffled 1...n, scaled, random signs).
  static func distinct(_ n: Int, scale: Float = 0.01, rng: inout SeededRNG) -> [Float] {
    (1...max(n, 1)).shuffled(using: &rng).prefix(n).map { Float($0) * scale * (Bool.random(using: &rng) ? 1 : -1) }
  }

  static func tensor(_ shape: [Int], _ values: [Float]) -> Tensor {
    do { return try Tensor(shape: shape, floats: values) } catch { fatalError("fixture: \(error)") }
  }

  /// x[1, c0, 6, 6] -> Conv(w0) -> Relu -> Conv(w1) -> Relu -> ... (3x3 or 1x1, padded), one
  /// Conv per weight shape; output "y".
  static func convChain(_ shapes: [[Int]], rng: inout SeededRNG) -> Graph {
    var nodes: [Node] = []
    var constants: [String: Tensor] = [:]
    var prev = "x"
    for (i, s) in shapes.enumerated() {
      let w = "w\(i)"
      constants[w] = tensor(s, distinct(s.reduce(1, *), rng: &rng))
      let pad = Int64(s[2] / 2)
      nodes.append(
        Node(
          name: "conv\(i)", opType: "Conv", inputs: [prev, w], outputs: ["c\(i)"],
          attributes: ["pads": .ints([pad, pad, pad, pad]), "kernel_shape": .ints([Int64(s[2]), Int64(s[3])])]))
      let last = i == shapes.count - 1
      nodes.append(Node(name: "relu\(i)", opType: "Relu", inputs: ["c\(i)"], outputs: [last ? "y" : "r\(i)"]))
      prev = "r\(i)"
    }
    return Graph(
      inputs: [ValueInfo(name: "x", dtype: .float32, shape: [.fixed(1), .fixed(shapes[0][1]), .fixed(6), .fixed(6)])],
      outputs: [ValueInfo(name: "y")], nodes: nodes, constants: constants, opset: 13)
  }

  /// Runs `g` with Sparrow's own runtime (dense weights) on `x`.
  static func run(_ g: Graph, _ x: Tensor) throws -> Tensor {
    let plan = try Planner.plan(g, options: PlanOptions(threads: 1, format: .fixed(.dense)))
    guard let y = try Session(plan: plan).run(["x": x])[g.outputs[0].name] else {
      throw ModelError("no output \(g.outputs[0].name)")
    }
    return y
  }

  static func options(
    _ m: PruneMethod, _ s: Double?, scope: PruneScope = .layer, skip: Bool = false, shrink: Bool = false
  ) -> PruneOptions {
    var o = PruneOptions(method: m, sparsity: s)
    o.scope = scope
    o.skipFirstLast = skip
    o.shrink = shrink
    return o
  }

  /// Flat values of constant `name`.
  static func values(_ g: Graph, _ name: String) -> [Float] { g.constants[name]?.floats ?? [] }

  /// The weight a node reads now (shrinking may rename it).
  static func weight(_ g: Graph, node: String) -> Tensor? {
    g.nodes.first { $0.name == node }.flatMap { g.constants[$0.inputs[1]] }
  }

  /// A small network with everything a channel removal has to pass through:
  /// convA(3x3, bias) → BatchNorm → Relu → depthwise 3x3 (bias) → Relu → convB(1x1, bias)
  /// → Add 0.25 → Relu → convC(1x1) ┐
  ///                    x → convR(1x1) ┴ Add (residual) → Relu → GlobalAveragePool → Flatten → Gemm.
  /// convB's removed channels reach convC as the constant relu(0.25), which convC folds into
  /// a bias it does not have yet. `consumerPads` pads convC (making that fold impossible).
  static func residualNet(rng: inout SeededRNG, consumerKernel: Int = 1) -> Graph {
    func w(_ shape: [Int]) -> Tensor { tensor(shape, distinct(shape.reduce(1, *), rng: &rng)) }
    func positive(_ n: Int) -> Tensor { tensor([n], (0..<n).map { _ in Float.random(in: 0.5...1.5, using: &rng) }) }
    let k = Int64(consumerKernel), p = Int64(consumerKernel / 2)
    let constants: [String: Tensor] = [
      "wA": w([8, 3, 3, 3]), "bA": w([8]), "scale": positive(8), "shift": w([8]), "mean": w([8]), "var": positive(8),
      "wD": w([8, 1, 3, 3]), "bD": w([8]), "wB": w([8, 8, 1, 1]), "bB": w([8]), "quarter": tensor([], [0.25]),
      "wC": w([6, 8, consumerKernel, consumerKernel]), "wR": w([6, 3, 1, 1]), "wG": w([4, 6]), "bG": w([4]),
    ]
    let pad1: [String: Attribute] = ["pads": .ints([1, 1, 1, 1])]
    let nodes = [
      Node(name: "convA", opType: "Conv", inputs: ["x", "wA", "bA"], outputs: ["a"], attributes: pad1),
      Node(name: "bn", opType: "BatchNormalization", inputs: ["a", "scale", "shift", "mean", "var"], outputs: ["an"]),
      Node(name: "reluA", opType: "Relu", inputs: ["an"], outputs: ["ar"]),
      Node(name: "dw", opType: "Conv", inputs: ["ar", "wD", "bD"], outputs: ["d"], attributes: pad1.merging(["group": .int(8)]) { a, _ in a }),
      Node(name: "reluD", opType: "Relu", inputs: ["d"], outputs: ["dr"]),
      Node(name: "convB", opType: "Conv", inputs: ["dr", "wB", "bB"], outputs: ["b"]),
      Node(name: "lab", opType: "Add", inputs: ["b", "quarter"], outputs: ["bs"]),
      Node(name: "reluB", opType: "Relu", inputs: ["bs"], outputs: ["br"]),
      Node(name: "convC", opType: "Conv", inputs: ["br", "wC"], outputs: ["c"], attributes: ["pads": .ints([p, p, p, p]), "kernel_shape": .ints([k, k])]),
      Node(name: "convR", opType: "Conv", inputs: ["x", "wR"], outputs: ["r"]),
      Node(name: "res", opType: "Add", inputs: ["c", "r"], outputs: ["s"]),
      Node(name: "reluS", opType: "Relu", inputs: ["s"], outputs: ["sr"]),
      Node(name: "gap", opType: "GlobalAveragePool", inputs: ["sr"], outputs: ["gp"]),
      Node(name: "flat", opType: "Flatten", inputs: ["gp"], outputs: ["f"]),
      Node(name: "fc", opType: "Gemm", inputs: ["f", "wG", "bG"], outputs: ["y"], attributes: ["transB": .int(1)]),
    ]
    return Graph(
      inputs: [ValueInfo(name: "x", dtype: .float32, shape: [.fixed(1), .fixed(3), .fixed(6), .fixed(6)])],
      outputs: [ValueInfo(name: "y")], nodes: nodes, constants: constants, opset: 13)
  }

  /// Filters (rows of a `[rows, ...]` tensor) that are entirely zero.
  static func zeroFilters(_ t: Tensor) -> [Int] {
    let f = t.floats, per = f.count / t.shape[0]
    return (0..<t.shape[0]).filter { r in f[(r * per)..<((r + 1) * per)].allSatisfy { $0 == 0 } }
  }

  /// The L1 norm of each filter, plainly.
  static func l1(_ t: Tensor) -> [Double] {
    let f = t.floats, per = f.count / t.shape[0]
    return (0..<t.shape[0]).map { r in f[(r * per)..<((r + 1) * per)].reduce(0.0) { $0 + Double(abs($1)) } }
  }

  /// Indices of the `k` smallest values.
  static func smallest(_ v: [Double], _ k: Int) -> [Int] { Array(v.indices.sorted { v[$0] < v[$1] }.prefix(k)).sorted() }
}
