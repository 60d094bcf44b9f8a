import Foundation
import Testing

@testable import Sparrow

/// FuseGateScore on the gated digits models (learned gates trained in PyTorch, exported by
/// torch.onnx): the fused plan equals the unfused graph's (the FC's additions run in another
/// order: within the kernel bound, the same channels kept) in gate mode `off` and `model` alike,
/// and ONNX Runtime's logits; bad gate sub-graphs are refused with the node named.
@Suite struct GateScoreTests {
  static let budgets = ["r100", "r75", "r50", "r25"]

  static func files(_ r: String) -> (model: URL, x: URL, logits: URL) {
    let d = ModelFiles.root.appendingPathComponent("digits/gated")
    return (
      d.appendingPathComponent("digits_gated_\(r)_seed0.onnx"),
      d.appendingPathComponent("ref/digits_gated_\(r)_seed0.input_0_x.npy"),
      d.appendingPathComponent("ref/digits_gated_\(r)_seed0.output_0_logits.npy")
    )
  }

  @Test(arguments: budgets)
  func fusedGateScoreEqualsTheUnfusedSubGraph(_ r: String) throws {
    let f = Self.files(r)
    let graph = try ONNXImporter.load(contentsOf: f.model)
    let x = try NPY.read(contentsOf: f.x)
    let ref = try NPY.read(contentsOf: f.logits)
    let options = PlanOptions(threads: 1, format: .fixed(.dense), formatCache: nil)
    let fused = try Model(graph: try Passes.optimize(graph), optimize: false, options: options)
    let unfused = try Model(graph: try Passes.optimize(graph, gateScore: false), optimize: false, options: options)
    #expect(fused.graph.nodes.filter { $0.opType == "GateScore" }.count == 6)
    #expect(!fused.graph.nodes.contains { ["TopK", "ReduceMin", "GlobalAveragePool"].contains($0.opType) && $0.name.contains("gate") })
    let fp = try fused.plan(shapes: ["x": x.shape]), up = try unfused.plan(shapes: ["x": x.shape])
    #expect(fp.steps.count + 6 * 8 == up.steps.count, "each gate: one step instead of nine")
    for mode in [GateMode.off, .model] {
      let a = Session(plan: fp), b = Session(plan: up)
      a.gate = mode
      b.gate = mode
      let ya = try a.run(["x": x])["logits"]!.floats, yb = try b.run(["x": x])["logits"]!.floats
      let same = zip(ya, yb).allSatisfy { abs($0 - $1) <= 1e-5 + 1e-4 * abs($1) }
      #expect(same, "\(r) \(mode): fused and unfused differ")
      let scale = ref.floats.map { abs($0) }.max() ?? 0
      let worst = zip(ya, ref.floats).map { abs($0 - $1) }.max() ?? 0
      #expect(worst <= 1e-4 * scale, "\(r) \(mode) vs ONNX Runtime: \(worst)")
      #expect(a.gateLog.layers.map(\.skippedOutputs) == b.gateLog.layers.map(\.skippedOutputs))
    }
  }

  /// The gate sub-graph of digits_lib.ChannelGate, by hand: x [N, C, 3, 3] -> g [N, M, 1, 1].
  static func gateGraph(k: Int64, c: Int = 4, m: Int = 6, transB: Int64 = 1) throws -> Graph {
    var rng = SeededRNG(seed: 9)
    let w = try Tensor(shape: transB == 1 ? [m, c] : [c, m], floats: (0..<(m * c)).map { _ in rng.float() })
    return Graph(
      inputs: [ValueInfo(name: "x", dtype: .float32, shape: [.symbolic("N"), .symbolic("C"), .fixed(3), .fixed(3)])],
      outputs: [ValueInfo(name: "g")],
      nodes: [
        Node(name: "gap", opType: "GlobalAveragePool", inputs: ["x"], outputs: ["p"]),
        Node(name: "flat", opType: "Flatten", inputs: ["p"], outputs: ["f"], attributes: ["axis": .int(1)]),
        Node(name: "fc", opType: "Gemm", inputs: ["f", "w", "b"], outputs: ["h"], attributes: ["transB": .int(transB)]),
        Node(name: "relu", opType: "Relu", inputs: ["h"], outputs: ["s"]),
        Node(name: "topk", opType: "TopK", inputs: ["s", "k"], outputs: ["v", "i"], attributes: ["axis": .int(1)]),
        Node(name: "min", opType: "ReduceMin", inputs: ["v"], outputs: ["t"], attributes: ["axes": .ints([1]), "keepdims": .int(1)]),
        Node(name: "ge", opType: "GreaterOrEqual", inputs: ["s", "t"], outputs: ["mask"]),
        Node(name: "cast", opType: "Cast", inputs: ["mask"], outputs: ["mf"], attributes: ["to": .int(1)]),
        Node(name: "mul", opType: "Mul", inputs: ["s", "mf"], outputs: ["gs"]),
        Node(name: "unsq", opType: "Unsqueeze", inputs: ["gs", "axes"], outputs: ["g"]),
      ],
      constants: [
        "w": w, "b": try Tensor(shape: [m], floats: (0..<m).map { _ in rng.float() }),
        "k": try Tensor(shape: [1], storage: .int64([k])), "axes": try Tensor(shape: [2], storage: .int64([2, 3])),
      ], opset: 13)
  }

  @Test(arguments: [(Int64(1), Int64(1)), (3, 1), (6, 0)])
  func handWrittenGateFusesAndMatches(k: Int64, transB: Int64) throws {
    let g = try Self.gateGraph(k: k, transB: transB)
    let opt = try Passes.optimize(g)
    #expect(opt.nodes.map(\.opType) == ["GateScore"])
    expectError(ModelError.self, containing: "carries an epilogue") { _ = try ONNXExporter.encode(opt) }
    var rng = SeededRNG(seed: 5)
    let x = try Tensor(shape: [3, 4, 3, 3], floats: (0..<108).map { _ in rng.float() })
    let options = PlanOptions(threads: 1, formatCache: nil)
    let a = try Model(graph: opt, optimize: false, options: options).run(["x": x])["g"]!
    let b = try Model(graph: g, optimize: false, options: options).run(["x": x])["g"]!
    #expect(a.shape == [3, 6, 1, 1])
    let close = zip(a.floats, b.floats).allSatisfy { abs($0 - $1) <= 1e-5 + 1e-4 * abs($1) }
    #expect(close, "\(a.floats) vs \(b.floats)")
    #expect(zip(a.floats, b.floats).allSatisfy { ($0 == 0) == ($1 == 0) }, "the same channels kept")
  }

  @Test func aKOutsideTheChannelsIsAClearError() throws {
    for k: Int64 in [0, 7] {
      let model = try Model(graph: try Self.gateGraph(k: k), options: PlanOptions(threads: 1, formatCache: nil))
      expectError(ModelError.self, containing: "k must be in 1...6") { _ = try model.plan(shapes: ["x": [1, 4, 3, 3]]) }
    }
  }

  @Test func aChannelMismatchIsAClearError() throws {
    let model = try Model(graph: try Self.gateGraph(k: 2), options: PlanOptions(threads: 1, formatCache: nil))
    expectError(ModelError.self, containing: "has 5 channels") { _ = try model.plan(shapes: ["x": [1, 5, 3, 3]]) }
  }

  @Test func anIntermediateReadElsewhereIsNotFused() throws {
    var g = try Self.gateGraph(k: 2)
    g.outputs.append(ValueInfo(name: "t"))
    #expect(try Passes.optimize(g).nodes.contains { $0.opType == "TopK" })
  }
}
