import Testing

@testable import Sparrow

/// Nonsense is refused with a one-line reason, never a trap.
@Suite struct PruneErrorTests {
  typealias F = PruneFixtures

  func refusal(_ o: PruneOptions, _ g: Graph? = nil) -> String? {
    var rng = SeededRNG(seed: 31)
    let graph = g ?? F.convChain([[8, 4, 3, 3], [6, 8, 3, 3]], rng: &rng)
    do {
      _ = try Pruner.prune(graph, o)
      return nil
    } catch {
      return error.message
    }
  }

  @Test(arguments: [1.0, -0.1, 1.5, .nan, .infinity]) func sparsityOutsideZeroOne(_ s: Double) {
    #expect(refusal(F.options(.magnitude, s))?.contains("[0, 1)") == true)
  }

  @Test func combinationsThatMakeNoSense() throws {
    var o = F.options(.magnitude, 0.5)
    o.pattern = try NMPattern(n: 2, m: 4)
    #expect(refusal(o)?.contains("--pattern applies only") == true)
    o = F.options(.nm, nil)
    o.block = try BlockShape2D(rows: 4, cols: 1)
    #expect(refusal(o)?.contains("--block applies only") == true)
    #expect(refusal(F.options(.magnitude, 0.5, shrink: true))?.contains("--shrink applies only") == true)
    #expect(refusal(F.options(.nm, nil, scope: .global))?.contains("global") == true)
    #expect(refusal(F.options(.magnitude, nil))?.contains("--sparsity is required") == true)
    #expect(refusal(F.options(.nm, 0.3))?.contains("contradicts") == true)
    #expect(refusal(F.options(.nm, 0.5)) == nil)
  }

  @Test(arguments: [
    ("3:2", "is not N:M"), ("0:4", "is not N:M"), ("4:4", "is not N:M"), ("2:64", "is not N:M"),
    ("2-4", "expected N:M"), ("a:b", "expected N:M"), (":4", "expected N:M"),
  ]) func badPatterns(_ s: String, _ error: String) {
    expectError(PruneError.self, containing: error, s) { _ = try NMPattern(parsing: s) }
  }

  @Test(arguments: [
    ("0x4", "need 1..64"), ("1x1", "at least 2 values"), ("4by1", "expected"), ("4x", "expected"),
    ("-1x4", "need 1..64"), ("100x1", "need 1..64"),
  ]) func badBlocks(_ s: String, _ error: String) {
    expectError(PruneError.self, containing: error, s) { _ = try BlockShape2D(parsing: s) }
  }

  @Test func noEligibleLayer() {
    var rng = SeededRNG(seed: 32)
    let dwOnly = Graph(
      inputs: [ValueInfo(name: "x", dtype: .float32, shape: [.fixed(1), .fixed(4), .fixed(4), .fixed(4)])],
      outputs: [ValueInfo(name: "y")],
      nodes: [Node(name: "dw", opType: "Conv", inputs: ["x", "w"], outputs: ["y"], attributes: ["group": .int(4)])],
      constants: ["w": F.tensor([4, 1, 3, 3], F.distinct(36, rng: &rng))], opset: 13)
    #expect(refusal(F.options(.magnitude, 0.5), dwOnly)?.contains("no eligible layer") == true)
    let runtimeWeight = Graph(
      inputs: [ValueInfo(name: "x"), ValueInfo(name: "w")], outputs: [ValueInfo(name: "y")],
      nodes: [Node(name: "mm", opType: "MatMul", inputs: ["x", "w"], outputs: ["y"])], opset: 13)
    #expect(refusal(F.options(.random, 0.5), runtimeWeight)?.contains("no eligible layer") == true)
    // Two layers, both skipped as first and last.
    var o = F.options(.magnitude, 0.5)
    o.skipFirstLast = true
    #expect(refusal(o)?.contains("first layer") == true)
  }

  @Test func nonFloatWeightsAreLeftAlone() throws {
    var rng = SeededRNG(seed: 33)
    var g = F.convChain([[8, 4, 3, 3], [6, 8, 3, 3]], rng: &rng)
    g.constants["w1"] = try Tensor(shape: [6, 8, 3, 3], storage: .int64([Int64](repeating: 1, count: 432)))
    let (_, report) = try Pruner.prune(g, F.options(.magnitude, 0.5))
    #expect(report.layers.first { $0.name == "conv1" }?.note.contains("not fp32") == true)
  }
}
