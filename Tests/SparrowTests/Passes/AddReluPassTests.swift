import Testing

@testable import Sparrow

/// FuseActivation on a residual join, `Relu(Add(a, b))`: the optimised graph has one Add carrying
/// the Relu as its clamp, and computes what the unfused graph computes (bit for bit: the same
/// `max(v, 0)`), for same-shape float operands on one and several threads (large enough to split
/// into parts), a broadcast operand (int64 is refused, as by Relu); an Add whose sum has a second reader keeps its Relu.
@Suite struct AddReluPassTests {
  static func graph(_ a: [Int], _ b: [Int], dtype: DType = .float32, extraReader: Bool = false) -> Graph {
    var nodes = [
      Node(name: "add", opType: "Add", inputs: ["a", "b"], outputs: ["s"]),
      Node(name: "relu", opType: "Relu", inputs: ["s"], outputs: ["y"]),
    ]
    var outputs = [ValueInfo(name: "y")]
    if extraReader {
      nodes.append(Node(name: "neg", opType: "Neg", inputs: ["s"], outputs: ["n"]))
      outputs.append(ValueInfo(name: "n"))
    }
    return Graph(
      inputs: [
        ValueInfo(name: "a", dtype: dtype, shape: a.map { .fixed($0) }),
        ValueInfo(name: "b", dtype: dtype, shape: b.map { .fixed($0) }),
      ],
      outputs: outputs, nodes: nodes, constants: [:], opset: 17)
  }

  static func run(_ g: Graph, _ feeds: [String: Tensor], threads: Int) throws -> Tensor {
    let plan = try Planner.plan(g, options: PlanOptions(threads: threads, format: .fixed(.dense)))
    return try #require(try Session(plan: plan).run(feeds)["y"])
  }

  @Test(arguments: [
    ([2, 64, 28, 28], [2, 64, 28, 28], 1), ([2, 64, 28, 28], [2, 64, 28, 28], 2),
    ([2, 64, 28, 28], [2, 64, 28, 28], 3), ([3, 5, 7], [3, 5, 7], 2), ([2, 64, 28, 28], [64, 1, 1], 2),
  ])
  func floatAddReluFusesAndMatches(a: [Int], b: [Int], threads: Int) throws {
    let g = Self.graph(a, b)
    let fused = try Passes.optimize(g)
    #expect(fused.nodes.map(\.opType) == ["Add"])
    #expect(fused.nodes.first?.epilogue.clamp == 0...Float.infinity)
    var rng = SeededRNG(seed: 5)
    var xa = (0..<a.reduce(1, *)).map { _ in rng.float() * 2 - 1 }
    xa[3] = .nan
    xa[4] = -0.0
    let xb = (0..<b.reduce(1, *)).map { _ in rng.float() * 2 - 1 }
    let feeds = ["a": try Tensor(shape: a, floats: xa), "b": try Tensor(shape: b, floats: xb)]
    let got = try Self.run(fused, feeds, threads: threads).floats
    let want = try Self.run(g, feeds, threads: 1).floats
    #expect(got.count == want.count)
    #expect(got[3].isNaN && want[3].isNaN)
    let same = zip(got, want).allSatisfy { $0.bitPattern == $1.bitPattern || ($0.isNaN && $1.isNaN) }
    #expect(same, "a \(a) b \(b) threads \(threads)")
    #expect(got.allSatisfy { $0.isNaN || $0 >= 0 })
  }

  /// Relu takes float32 only: the fused int64 Add is refused as the unfused Relu is.
  @Test func int64AddReluIsRefusedAsRelu() throws {
    let g = Self.graph([4, 6], [6], dtype: .int64)
    let fused = try Passes.optimize(g)
    #expect(fused.nodes.map(\.opType) == ["Add"])
    let options = PlanOptions(threads: 1, format: .fixed(.dense))
    #expect(throws: ModelError.self) { try Planner.plan(g, options: options) }
    let e = #expect(throws: ModelError.self) { try Planner.plan(fused, options: options) }
    #expect(e?.message.contains("takes float32, got int64") == true, "\(String(describing: e))")
  }

  @Test func sumWithASecondReaderKeepsItsRelu() throws {
    let fused = try Passes.optimize(Self.graph([3, 5], [3, 5], extraReader: true))
    #expect(fused.nodes.map(\.opType) == ["Add", "Relu", "Neg"])
    #expect(fused.nodes[0].epilogue.isEmpty)
  }
}
