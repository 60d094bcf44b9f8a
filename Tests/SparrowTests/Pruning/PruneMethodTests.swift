import Testing

@testable import Sparrow

/// `magnitude`, `random`, `nm` and `block` on small synthetic weights, each checked against
/// what the method promises, computed here by brute force.
@Suite struct PruneMethodTests {
  typealias F = PruneFixtures

  @Test(arguments: [0.0, 0.3, 0.5, 0.77, 0.9, 0.999]) func magnitudeKeepsExactlyTheLargest(_ s: Double) throws {
    var rng = SeededRNG(seed: 11)
    let g = F.convChain([[8, 4, 3, 3], [6, 8, 3, 3]], rng: &rng)
    let (out, report) = try Pruner.prune(g, F.options(.magnitude, s))
    for name in ["w0", "w1"] {
      let before = F.values(g, name), after = F.values(out, name)
      let k = Int((s * Double(before.count)).rounded())
      #expect(after.filter { $0 == 0 }.count == k, "\(name) at \(s)")
      // Kept values are unchanged and every kept |w| beats every pruned one.
      let kept = before.indices.filter { after[$0] != 0 }
      #expect(kept.allSatisfy { after[$0] == before[$0] })
      let minKept = kept.map { abs(before[$0]) }.min() ?? .infinity
      let maxPruned = before.indices.filter { after[$0] == 0 }.map { abs(before[$0]) }.max() ?? 0
      #expect(k == 0 || k == before.count || maxPruned < minKept)
    }
    #expect(report.layers.count == 2)
  }

  @Test func magnitudeTiesGoToTheLowerIndexFirst() throws {
    let w = F.tensor([4, 4, 1, 1], (0..<16).map { $0 % 2 == 0 ? 0.5 : -0.5 })
    let g = Graph(
      inputs: [ValueInfo(name: "x", dtype: .float32, shape: [.fixed(1), .fixed(4), .fixed(2), .fixed(2)])],
      outputs: [ValueInfo(name: "y")],
      nodes: [Node(name: "c", opType: "Conv", inputs: ["x", "w"], outputs: ["y"])], constants: ["w": w], opset: 13)
    let (out, _) = try Pruner.prune(g, F.options(.magnitude, 0.25))
    #expect(F.values(out, "w").map { $0 == 0 } == (0..<16).map { $0 < 4 })
  }

  /// The linear-time selection the bulk methods use picks the same set as a plain sort.
  @Test(arguments: 0..<20) func selectionMatchesASort(_ seed: Int) {
    var rng = SeededRNG(seed: UInt64(seed) + 100)
    let n = Int.random(in: 1...300, using: &rng)
    let keys = (0..<n).map { _ in Float(Int.random(in: 0...(seed % 2 == 0 ? 5 : 1000), using: &rng)) }  // many ties
    for k in [0, 1, n / 3, n / 2, n - 1, n] {
      let ref = keys.indices.sorted { keys[$0] < keys[$1] || (keys[$0] == keys[$1] && $0 < $1) }.prefix(k)
      #expect(WeightMethods.smallestSet(keys, count: k) == ref.sorted(), "seed \(seed) n \(n) k \(k)")
    }
  }

  @Test func randomIsSeededAndHitsTheCount() throws {
    var rng = SeededRNG(seed: 12)
    let g = F.convChain([[8, 4, 3, 3], [6, 8, 3, 3]], rng: &rng)
    func prune(_ seed: UInt64) throws -> [Float] {
      var o = F.options(.random, 0.6)
      o.seed = seed
      return F.values(try Pruner.prune(g, o).0, "w1")
    }
    let a = try prune(7), b = try prune(7), c = try prune(8)
    #expect(a == b)
    #expect(a != c)
    let before = F.values(g, "w1")
    #expect(a.filter { $0 == 0 }.count == Int((0.6 * Double(before.count)).rounded()))
    #expect(a.indices.allSatisfy { a[$0] == 0 || a[$0] == before[$0] })
  }

  /// Every group of M input channels at one kernel position keeps its N largest |w|, and the
  /// result packs in the kernels' N:M format with that grouping.
  @Test(arguments: [(2, 4), (1, 4), (2, 8)]) func nmConformsPerGroupAndPacks(_ n: Int, _ m: Int) throws {
    var rng = SeededRNG(seed: 13)
    let shape = [6, 16, 3, 3]
    let g = F.convChain([shape, [5, 6, 1, 1]], rng: &rng)
    var o = F.options(.nm, nil)
    o.pattern = try NMPattern(n: n, m: m)
    let (out, report) = try Pruner.prune(g, o)
    let before = F.values(g, "w0"), after = F.values(out, "w0")
    let k = 16 * 9
    for r in 0..<6 {
      for pos in 0..<9 {
        for g0 in stride(from: 0, to: 16, by: m) {
          let idx = (g0..<(g0 + m)).map { r * k + $0 * 9 + pos }
          let keep = Set(idx.sorted { abs(before[$0]) > abs(before[$1]) }.prefix(n))
          #expect(idx.allSatisfy { keep.contains($0) ? after[$0] == before[$0] : after[$0] == 0 }, "row \(r) pos \(pos) group \(g0)")
        }
      }
    }
    _ = try PackedMatrix(dense: after, rows: 6, cols: k, format: .nm(n: n, m: m, groupStride: 9))
    // The 1x1 layer has 6 input channels: its last group is partial and keeps at most N.
    let w1 = F.values(out, "w1")
    for r in 0..<5 {
      #expect(w1[(r * 6)..<(r * 6 + min(m, 6))].filter { $0 != 0 }.count == min(n, 6))
      if m < 6 { #expect(w1[(r * 6 + m)..<(r * 6 + 6)].filter { $0 != 0 }.count == min(n, 6 - m)) }
    }
    _ = try PackedMatrix(dense: w1, rows: 5, cols: 6, format: .nm(n: n, m: m))
    #expect(report.layers.allSatisfy { $0.note.isEmpty })
  }

  /// `--share-rows 8`: every block of 8 output rows (the last partial) keeps the same N of each
  /// group of M, the positions with the largest |w| summed over the block; the result packs as a
  /// shared pattern (what the shared-pattern kernels need) and prune refuses it off nm.
  @Test func nmSharedRowsKeepOnePatternPerBlock() throws {
    var rng = SeededRNG(seed: 16)
    let shape = [20, 8, 3, 3]
    let g = F.convChain([[8, 3, 3, 3], shape, [5, 20, 1, 1]], rng: &rng)
    var o = F.options(.nm, nil)
    o.shareRows = 8
    let (out, _) = try Pruner.prune(g, o)
    let before = F.values(g, "w1"), after = F.values(out, "w1")
    let k = 8 * 9
    for r0 in stride(from: 0, to: 20, by: 8) {
      let rows = r0..<min(20, r0 + 8)
      for pos in 0..<9 {
        for g0 in [0, 4] {
          let cols = (g0..<(g0 + 4)).map { $0 * 9 + pos }
          let score = { (c: Int) in rows.reduce(Float(0)) { $0 + abs(before[$1 * k + c]) } }
          let keep = Set(cols.sorted { score($0) > score($1) }.prefix(2))
          for r in rows {
            #expect(
              cols.allSatisfy { keep.contains($0) ? after[r * k + $0] == before[r * k + $0] : after[r * k + $0] == 0 })
          }
        }
      }
    }
    let packed = try PackedMatrix(dense: after, rows: 20, cols: k, format: .nm(n: 2, m: 4, groupStride: 9))
    #expect(packed.nmSharedRows == 8)
    expectError(PruneError.self, containing: "--share-rows applies only") {
      _ = try PruneOptions(parsing: "magnitude", sparsity: 0.5, shareRows: 8)
    }
    expectError(PruneError.self, containing: "--share-rows must be in") {
      _ = try PruneOptions(parsing: "nm", sparsity: nil, shareRows: 0)
    }
  }

  @Test func nmOnGemmAndMatMulGroupsAlongK() throws {
    var rng = SeededRNG(seed: 14)
    let b = F.tensor([8, 8], F.distinct(64, rng: &rng))  // MatMul: K=8 x N=8, stored K-major
    let c = F.tensor([3, 8], F.distinct(24, rng: &rng))  // Gemm transB=1: N=3 x K=8
    let g = Graph(
      inputs: [ValueInfo(name: "x", dtype: .float32, shape: [.fixed(2), .fixed(8)])], outputs: [ValueInfo(name: "y")],
      nodes: [
        Node(name: "mm", opType: "MatMul", inputs: ["x", "b"], outputs: ["h"]),
        Node(name: "fc", opType: "Gemm", inputs: ["h", "c"], outputs: ["y"], attributes: ["transB": .int(1)]),
      ], constants: ["b": b, "c": c], opset: 13)
    let (out, _) = try Pruner.prune(g, F.options(.nm, nil))
    let bb = F.values(out, "b"), cc = F.values(out, "c")
    for g0 in [0, 4] {
      for o in 0..<8 { #expect((g0..<(g0 + 4)).filter { bb[$0 * 8 + o] != 0 }.count == 2) }  // MatMul: column o
      for o in 0..<3 { #expect((g0..<(g0 + 4)).filter { cc[o * 8 + $0] != 0 }.count == 2) }  // Gemm: row o
    }
  }

  @Test func nmLeavesAnUnfitLayerDenseAndRefusesWhenNothingFits() throws {
    var rng = SeededRNG(seed: 15)
    let g = F.convChain([[6, 6, 3, 3], [4, 8, 3, 3]], rng: &rng)  // w0 has 6 channels: not whole groups of 4
    let (out, report) = try Pruner.prune(g, F.options(.nm, nil))
    #expect(F.values(out, "w0") == F.values(g, "w0"))
    #expect(report.layers.first { $0.name == "conv0" }?.note.contains("not a multiple of 4") == true)
    let only = F.convChain([[6, 6, 3, 3]], rng: &rng)
    expectError(PruneError.self, containing: "fits no eligible layer") { _ = try Pruner.prune(only, F.options(.nm, nil)) }
  }

  /// Whole blocks (partial at the edges) are zero or untouched, and the zeroed ones are those
  /// with the smallest mean square.
  @Test(arguments: [(4, 1), (1, 4), (4, 4), (3, 5)]) func blockZerosWholeBlocks(_ br: Int, _ bc: Int) throws {
    var rng = SeededRNG(seed: 16)
    let g = F.convChain([[10, 2, 3, 3], [5, 10, 1, 1]], rng: &rng)  // 10 x 18 matrix: edges for every shape
    var o = F.options(.block, 0.5)
    o.block = try BlockShape2D(rows: br, cols: bc)
    let (out, _) = try Pruner.prune(g, o)
    let before = F.values(g, "w0"), after = F.values(out, "w0")
    var scores: [(Float, Bool)] = []
    for r0 in stride(from: 0, to: 10, by: br) {
      for c0 in stride(from: 0, to: 18, by: bc) {
        let idx = (r0..<min(r0 + br, 10)).flatMap { r in (c0..<min(c0 + bc, 18)).map { r * 18 + $0 } }
        let zero = idx.allSatisfy { after[$0] == 0 }
        #expect(zero || idx.allSatisfy { after[$0] == before[$0] }, "block at \(r0),\(c0)")
        scores.append((idx.map { before[$0] * before[$0] }.reduce(0, +) / Float(idx.count), zero))
      }
    }
    let zeroed = scores.filter(\.1).map(\.0), kept = scores.filter { !$0.1 }.map(\.0)
    #expect(zeroed.count == Int((0.5 * Double(scores.count)).rounded()))
    #expect((zeroed.max() ?? 0) <= (kept.min() ?? .infinity))
  }

  /// Stripe-wise: every stripe W[o, :, i, j] (all input channels at one kernel position) is
  /// zero or untouched, the zeroed ones are those with the smallest mean |w|, a 1x1 filter is
  /// one stripe, and a Gemm is left dense with the reason. The reference walks the ONNX layout
  /// [Cout, Cin, kh, kw] directly, not the pruner's matrix view.
  @Test(arguments: [0.3, 0.5, 0.8]) func stripeZerosWholeKernelPositions(_ sp: Double) throws {
    var rng = SeededRNG(seed: 19)
    let g = F.convChain([[6, 4, 3, 3], [5, 6, 1, 1]], rng: &rng)
    let (out, report) = try Pruner.prune(g, F.options(.stripe, sp))
    for (name, (cout, cin, kk)) in [("w0", (6, 4, 9)), ("w1", (5, 6, 1))] {
      let before = F.values(g, name), after = F.values(out, name)
      var scores: [(Float, Bool)] = []
      for o in 0..<cout {
        for p in 0..<kk {
          let idx = (0..<cin).map { c in (o * cin + c) * kk + p }
          let zero = idx.allSatisfy { after[$0] == 0 }
          #expect(zero || idx.allSatisfy { after[$0] == before[$0] }, "\(name) stripe \(o),\(p)")
          scores.append((idx.map { abs(before[$0]) }.reduce(0, +) / Float(cin), zero))
        }
      }
      let zeroed = scores.filter(\.1).map(\.0), kept = scores.filter { !$0.1 }.map(\.0)
      #expect(zeroed.count == Int((sp * Double(scores.count)).rounded()), "\(name)")
      #expect((zeroed.max() ?? 0) <= (kept.min() ?? .infinity), "\(name)")
    }
    #expect(report.zerosAfter > 0)
    // The pruned model still runs and differs from the dense one only through the zeros.
    let x = F.tensor([1, 4, 6, 6], (0..<144).map { Float($0 % 7) - 3 })
    _ = try F.run(out, x)
  }

  @Test func stripeLeavesGemmDenseAndRanksGlobally() throws {
    var rng = SeededRNG(seed: 20)
    var g = F.convChain([[8, 4, 3, 3], [8, 8, 3, 3]], rng: &rng)
    g.constants["w1"] = F.tensor([8, 8, 3, 3], F.values(g, "w1").map { $0 * 1000 })  // every stripe of w1 outranks w0's
    let (global, _) = try Pruner.prune(g, F.options(.stripe, 0.4, scope: .global))
    let z0 = F.values(global, "w0").filter { $0 == 0 }.count, z1 = F.values(global, "w1").filter { $0 == 0 }.count
    // 72 + 72 stripes, 58 go: all from w0 (4 inputs each), none from w1.
    #expect(z0 == 58 * 4 && z1 == 0)
    // A Gemm beside a convolution is left dense with the reason; a model of Gemm/MatMul only is refused.
    let fc = F.tensor([3, 8 * 36], F.distinct(3 * 8 * 36, rng: &rng))
    var withFC = g
    withFC.nodes.append(Node(name: "flat", opType: "Flatten", inputs: ["y"], outputs: ["f"]))
    withFC.nodes.append(Node(name: "fc", opType: "Gemm", inputs: ["f", "wfc"], outputs: ["z"], attributes: ["transB": .int(1)]))
    withFC.constants["wfc"] = fc
    withFC.outputs = [ValueInfo(name: "z")]
    let (_, report) = try Pruner.prune(withFC, F.options(.stripe, 0.5))
    #expect(report.layers.first { $0.name == "fc" }?.note.contains("kernel positions") == true, "\(report.layers.map(\.note))")
    let b = F.tensor([8, 8], F.distinct(64, rng: &rng))
    let mm = Graph(
      inputs: [ValueInfo(name: "x", dtype: .float32, shape: [.fixed(2), .fixed(8)])], outputs: [ValueInfo(name: "y")],
      nodes: [Node(name: "mm", opType: "MatMul", inputs: ["x", "b"], outputs: ["y"])], constants: ["b": b], opset: 13)
    expectError(PruneError.self, containing: "stripe pruning fits no eligible layer") {
      _ = try Pruner.prune(mm, F.options(.stripe, 0.5))
    }
  }

  @Test func globalRanksAcrossLayersLayerScopeDoesNot() throws {
    var rng = SeededRNG(seed: 17)
    var g = F.convChain([[8, 4, 3, 3], [8, 8, 3, 3]], rng: &rng)
    g.constants["w1"] = F.tensor([8, 8, 3, 3], F.values(g, "w1").map { $0 * 1000 })  // every |w1| > every |w0|
    let (global, _) = try Pruner.prune(g, F.options(.magnitude, 0.4, scope: .global))
    let (layer, _) = try Pruner.prune(g, F.options(.magnitude, 0.4))
    let z0 = F.values(global, "w0").filter { $0 == 0 }.count, z1 = F.values(global, "w1").filter { $0 == 0 }.count
    #expect(z0 + z1 == Int((0.4 * Double(288 + 576)).rounded()))
    #expect(z0 == 288 && z1 == 58)
    #expect(F.values(layer, "w0").filter { $0 == 0 }.count == Int((0.4 * 288).rounded()))
    #expect(F.values(layer, "w1").filter { $0 == 0 }.count == Int((0.4 * 576).rounded()))
    let (blocks, _) = try Pruner.prune(g, F.options(.block, 0.4, scope: .global))
    #expect(F.values(blocks, "w0").allSatisfy { $0 == 0 })
  }

  @Test func skipFirstLastLeavesStemAndClassifierDense() throws {
    var rng = SeededRNG(seed: 18)
    let g = F.convChain([[8, 3, 3, 3], [8, 8, 3, 3], [4, 8, 1, 1]], rng: &rng)
    let (out, report) = try Pruner.prune(g, F.options(.magnitude, 0.5, skip: true))
    #expect(F.values(out, "w0") == F.values(g, "w0"))
    #expect(F.values(out, "w2") == F.values(g, "w2"))
    #expect(F.values(out, "w1").filter { $0 == 0 }.count == 288)
    #expect(report.layers.filter(\.pruned).map(\.name) == ["conv1"])
  }
}
