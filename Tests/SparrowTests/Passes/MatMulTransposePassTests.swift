import Testing

@testable import Sparrow

/// FoldMatMulTranspose on attention's head moves (`Transpose → MatMul → Transpose`): the folded
/// MatMul reads and writes strided views and computes what the Transposes and the plain MatMul
/// compute (the unoptimised graph, itself checked against ONNX Runtime elsewhere), for the perms
/// BERT exports use, for ones only a copy can serve, with broadcast batches and under threads.
@Suite struct MatMulTransposePassTests {
  struct Case: CustomStringConvertible {
    var a: [Int], aPerm: [Int]?
    var b: [Int], bPerm: [Int]?
    var outPerm: [Int]?
    var description: String { "A \(a) \(aPerm ?? []) B \(b) \(bPerm ?? []) out \(outPerm ?? [])" }
  }

  static func graph(_ c: Case, extraReader: Bool = false) -> Graph {
    var nodes: [Node] = []
    var aName = "a", bName = "b"
    if let p = c.aPerm {
      nodes.append(
        Node(
          name: "ta", opType: "Transpose", inputs: ["a"], outputs: ["at"],
          attributes: ["perm": .ints(p.map(Int64.init))]))
      aName = "at"
    }
    if let p = c.bPerm {
      nodes.append(
        Node(
          name: "tb", opType: "Transpose", inputs: ["b"], outputs: ["bt"],
          attributes: ["perm": .ints(p.map(Int64.init))]))
      bName = "bt"
    }
    nodes.append(Node(name: "mm", opType: "MatMul", inputs: [aName, bName], outputs: [c.outPerm == nil ? "y" : "p"]))
    var outputs = [ValueInfo(name: "y")]
    if let p = c.outPerm {
      nodes.append(
        Node(
          name: "tp", opType: "Transpose", inputs: ["p"], outputs: ["y"], attributes: ["perm": .ints(p.map(Int64.init))]
        ))
    }
    if extraReader {
      nodes.append(Node(name: "peek", opType: "Relu", inputs: [aName], outputs: ["peeked"]))
      outputs.append(ValueInfo(name: "peeked"))
    }
    return Graph(
      inputs: [
        ValueInfo(name: "a", dtype: .float32, shape: c.a.map { .fixed($0) }),
        ValueInfo(name: "b", dtype: .float32, shape: c.b.map { .fixed($0) }),
      ], outputs: outputs, nodes: nodes, opset: 13)
  }

  static func check(_ c: Case, folds: Int) throws {
    let g = graph(c)
    let opt = try Passes.optimize(g)
    #expect(opt.nodes.filter { $0.opType == "Transpose" }.count == g.nodes.count - 1 - folds, "\(c)")
    var rng = SeededRNG(seed: 123)
    let inputs = [
      "a": try Tensor(shape: c.a, floats: (0..<c.a.reduce(1, *)).map { _ in rng.float() }),
      "b": try Tensor(shape: c.b, floats: (0..<c.b.reduce(1, *)).map { _ in rng.float() }),
    ]
    let ref = try Model(graph: g, optimize: false, options: PlanOptions(threads: 1)).run(inputs)["y"]!
    for threads in [1, 2] {
      let got = try Model(graph: g, options: PlanOptions(threads: threads)).run(inputs)["y"]!
      #expect(got.shape == ref.shape, "\(c)")
      #expect(firstMismatch(got.floats, ref.floats) == nil, "\(c) threads \(threads)")
    }
  }

  @Test func attentionHeadMoves() throws {
    let (b, s, h, d) = (2, 13, 3, 5)
    // Q·Kᵀ: [B,S,H,D] → [B,H,S,D] times [B,S,H,D] → [B,H,D,S].
    try Self.check(Case(a: [b, s, h, d], aPerm: [0, 2, 1, 3], b: [b, s, h, d], bPerm: [0, 2, 3, 1]), folds: 2)
    // P·V, the context back to [B,S,H,D].
    try Self.check(
      Case(a: [b, h, s, s], aPerm: nil, b: [b, s, h, d], bPerm: [0, 2, 1, 3], outPerm: [0, 2, 1, 3]), folds: 2)
    // Kᵀ written as [B,H,S,D] then a last-two-axes swap.
    try Self.check(Case(a: [b, h, s, d], aPerm: nil, b: [b, h, s, d], bPerm: [0, 1, 3, 2]), folds: 1)
  }

  @Test func permutationsOnlyACopyServes() throws {
    // A transposed view (rows of unit stride), then A's matrix with the batch axis inside it:
    // neither axis of unit stride.
    try Self.check(Case(a: [4, 3, 5], aPerm: [1, 2, 0], b: [3, 4, 6], bPerm: nil), folds: 1)
    try Self.check(Case(a: [4, 3, 5], aPerm: [2, 0, 1], b: [5, 3, 6], bPerm: nil), folds: 1)
    // An output whose last axis is not contiguous once transposed.
    try Self.check(Case(a: [2, 3, 4, 5], aPerm: nil, b: [2, 3, 5, 6], bPerm: nil, outPerm: [0, 3, 2, 1]), folds: 1)
    try Self.check(
      Case(a: [2, 3, 4, 5], aPerm: [3, 1, 2, 0], b: [2, 3, 5, 6], bPerm: [2, 1, 0, 3], outPerm: [1, 3, 0, 2]), folds: 3)
  }

  @Test func broadcastBatchAndSingleRows() throws {
    try Self.check(
      Case(a: [1, 7, 3, 4], aPerm: [0, 2, 1, 3], b: [2, 3, 4, 7], bPerm: nil, outPerm: [0, 2, 1, 3]), folds: 2)
    try Self.check(Case(a: [2, 1, 3, 4], aPerm: [0, 2, 1, 3], b: [2, 1, 3, 4], bPerm: [0, 2, 3, 1]), folds: 2)
    try Self.check(Case(a: [3, 1, 2, 1], aPerm: [0, 2, 3, 1], b: [3, 2, 1, 4], bPerm: [0, 1, 2, 3]), folds: 2)
  }

  @Test func aSecondReaderOrAWeightKeepsTheTranspose() throws {
    let c = Case(a: [2, 5, 3, 4], aPerm: [0, 2, 1, 3], b: [2, 3, 4, 5], bPerm: nil)
    let opt = try Passes.optimize(Self.graph(c, extraReader: true))
    #expect(opt.nodes.contains { $0.opType == "Transpose" })
    // A linear layer (constant 2-D B) is the kernels' business, not a view.
    var g = Self.graph(Case(a: [2, 5, 3, 4], aPerm: [0, 2, 1, 3], b: [4, 6], bPerm: nil))
    g.inputs.removeLast()
    g.constants["b"] = try Tensor(shape: [4, 6], floats: [Float](repeating: 0.5, count: 24))
    #expect(try Passes.optimize(g).nodes.contains { $0.opType == "Transpose" })
  }

  @Test func aFoldedPermOfTheWrongRankIsAModelError() throws {
    var g = Self.graph(Case(a: [2, 5, 3, 4], aPerm: [0, 2, 1, 3], b: [2, 3, 4, 5], bPerm: nil))
    g = try Passes.optimize(g)
    g.inputs[0].shape = [.fixed(10), .fixed(3), .fixed(4)]
    do {
      _ = try Model(graph: g, optimize: false, options: PlanOptions(threads: 1)).plan()
      Issue.record("a rank-3 A under a rank-4 perm should be refused")
    } catch {
      #expect(error.message.contains("perm"), "\(error.message)")
    }
  }
}
