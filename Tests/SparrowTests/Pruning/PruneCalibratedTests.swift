import Testing

@testable import Sparrow

/// The calibrated methods. Wanda: scores |w|·‖x_channel‖ from calibration runs, compared per
/// output row or per N:M group, every expectation computed here from the calibration tensors with
/// plain loops. SparseGPT: its factorisation checked by multiplication, its sparsity by counting,
/// and its promise (a smaller layer-output error than magnitude's and Wanda's at the same
/// sparsity) by running both pruned models on the calibration inputs.
@Suite struct PruneCalibratedTests {
  typealias F = PruneFixtures

  /// x[rows, K] -> MatMul(W[K, N]) -> y: K input channels, N outputs.
  static func matmul(rows: Int = 3, k: Int, n: Int, rng: inout SeededRNG) -> Graph {
    Graph(
      inputs: [ValueInfo(name: "x", dtype: .float32, shape: [.fixed(rows), .fixed(k)])],
      outputs: [ValueInfo(name: "y")],
      nodes: [Node(name: "mm", opType: "MatMul", inputs: ["x", "w"], outputs: ["y"])],
      constants: ["w": F.tensor([k, n], F.distinct(k * n, rng: &rng))], opset: 13)
  }

  /// Calibration inputs whose channels differ in scale by orders of magnitude, so Wanda's choice
  /// differs from magnitude's.
  static func runs(_ shape: [Int], channelAxis: Int, count: Int, rng: inout SeededRNG) -> [[String: Tensor]] {
    let channels = shape[channelAxis], inner = shape[(channelAxis + 1)...].reduce(1, *)
    let scale = (0..<channels).map { _ in Float.random(in: 0.01...10, using: &rng) }
    return (0..<count).map { _ in
      let values = (0..<shape.reduce(1, *)).map { i in
        Float.random(in: -1...1, using: &rng) * scale[(i / inner) % channels]
      }
      return ["x": F.tensor(shape, values)]
    }
  }

  /// Per channel along `axis`, sqrt of the sum of squares over every run.
  static func norms(_ runs: [[String: Tensor]], axis: Int) -> [Double] {
    let shape = runs[0]["x"]!.shape
    let channels = shape[axis], inner = shape[(axis + 1)...].reduce(1, *)
    var s = [Double](repeating: 0, count: channels)
    for r in runs { for (i, v) in r["x"]!.floats.enumerated() { s[(i / inner) % channels] += Double(v) * Double(v) } }
    return s.map { $0.squareRoot() }
  }

  @Test(arguments: [0.3, 0.5, 0.7]) func matmulKeepsTheHighestScoresPerOutput(_ s: Double) throws {
    var rng = SeededRNG(seed: 41)
    let (k, n) = (24, 10)
    let g = Self.matmul(k: k, n: n, rng: &rng)
    let cal = Self.runs([3, k], channelAxis: 1, count: 2, rng: &rng)
    var o = F.options(.wanda, s)
    o.calibration = cal
    let (out, _) = try Pruner.prune(g, o)
    let w = F.values(g, "w"), after = F.values(out, "w"), norm = Self.norms(cal, axis: 1)
    let drop = Int((s * Double(k)).rounded())
    for col in 0..<n {  // output `col` reads W[:, col]
      let score = (0..<k).map { abs(Double(w[$0 * n + col])) * norm[$0] }
      let gone = Set((0..<k).sorted { score[$0] < score[$1] }.prefix(drop))
      for r in 0..<k {
        #expect(after[r * n + col] == (gone.contains(r) ? 0 : w[r * n + col]), "output \(col) row \(r)")
      }
    }
    // The choice depends on the inputs: magnitude at the same sparsity zeroes other weights.
    let (mag, _) = try Pruner.prune(g, F.options(.magnitude, s))
    #expect(F.values(mag, "w").map { $0 == 0 } != after.map { $0 == 0 })
  }

  /// A grouped convolution: each filter is scored with the norms of its own group's channels.
  @Test func groupedConvUsesItsGroupsChannels() throws {
    var rng = SeededRNG(seed: 42)
    let shape = [4, 3, 3, 3]  // 4 filters, 2 groups of 3 input channels
    let g = Graph(
      inputs: [ValueInfo(name: "x", dtype: .float32, shape: [.fixed(1), .fixed(6), .fixed(5), .fixed(5)])],
      outputs: [ValueInfo(name: "y")],
      nodes: [
        Node(
          name: "conv", opType: "Conv", inputs: ["x", "w"], outputs: ["y"],
          attributes: ["group": .int(2), "pads": .ints([1, 1, 1, 1]), "kernel_shape": .ints([3, 3])])
      ], constants: ["w": F.tensor(shape, F.distinct(shape.reduce(1, *), rng: &rng))], opset: 13)
    let cal = Self.runs([1, 6, 5, 5], channelAxis: 1, count: 3, rng: &rng)
    var o = F.options(.wanda, 0.5)
    o.calibration = cal
    let (out, _) = try Pruner.prune(g, o)
    let w = F.values(g, "w"), after = F.values(out, "w"), norm = Self.norms(cal, axis: 1)
    let cols = 27
    for f in 0..<4 {
      let base = (f / 2) * 3
      let score = (0..<cols).map { abs(Double(w[f * cols + $0])) * norm[base + $0 / 9] }
      let gone = Set((0..<cols).sorted { score[$0] < score[$1] }.prefix(14))  // round(0.5 · 27) = 14
      for c in 0..<cols { #expect((after[f * cols + c] == 0) == gone.contains(c), "filter \(f) column \(c)") }
    }
  }

  /// With a pattern, every group of M consecutive input channels keeps its N highest scores.
  @Test func nmKeepsTheHighestScoresPerGroup() throws {
    var rng = SeededRNG(seed: 43)
    let (k, n) = (16, 6)
    let g = Self.matmul(k: k, n: n, rng: &rng)
    let cal = Self.runs([3, k], channelAxis: 1, count: 1, rng: &rng)
    var o = F.options(.wanda, nil)
    o.pattern = try NMPattern(n: 2, m: 4)
    o.calibration = cal
    let (out, _) = try Pruner.prune(g, o)
    let w = F.values(g, "w"), after = F.values(out, "w"), norm = Self.norms(cal, axis: 1)
    for col in 0..<n {
      for g0 in stride(from: 0, to: k, by: 4) {
        let rows = Array(g0..<(g0 + 4))
        let keep = Set(
          rows.sorted { abs(Double(w[$0 * n + col])) * norm[$0] > abs(Double(w[$1 * n + col])) * norm[$1] }.prefix(2))
        for r in rows { #expect((after[r * n + col] != 0) == keep.contains(r), "output \(col) row \(r)") }
      }
    }
  }

  /// `--share-rows 8` with Wanda 2:4: blocks of 8 outputs (the last partial) keep the same 2 of
  /// each 4 inputs, those with the highest score |w|·‖x‖ summed over the block.
  @Test func nmSharedRowsKeepTheHighestSummedScores() throws {
    var rng = SeededRNG(seed: 48)
    let (k, n) = (16, 20)
    let g = Self.matmul(k: k, n: n, rng: &rng)
    let cal = Self.runs([3, k], channelAxis: 1, count: 1, rng: &rng)
    var o = F.options(.wanda, nil)
    o.pattern = try NMPattern(n: 2, m: 4)
    o.calibration = cal
    o.shareRows = 8
    let (out, _) = try Pruner.prune(g, o)
    let w = F.values(g, "w"), after = F.values(out, "w"), norm = Self.norms(cal, axis: 1)
    for c0 in stride(from: 0, to: n, by: 8) {
      let outs = c0..<min(n, c0 + 8)
      for g0 in stride(from: 0, to: k, by: 4) {
        let ins = Array(g0..<(g0 + 4))
        let score = { (r: Int) in outs.reduce(0.0) { $0 + abs(Double(w[r * n + $1])) * norm[r] } }
        let keep = Set(ins.sorted { score($0) > score($1) }.prefix(2))
        for r in ins { for c in outs { #expect((after[r * n + c] != 0) == keep.contains(r), "output \(c) input \(r)") } }
      }
    }
  }

  /// SparseGPT 2:4 shared by blocks of 8 outputs: one pattern per block and group, and a smaller
  /// layer-output error than magnitude's shared 2:4 (`nm --share-rows 8`) on correlated inputs.
  @Test func sparseGPTSharedRowsConformAndReconstruct() throws {
    var rng = SeededRNG(seed: 49)
    let (k, n) = (32, 24)
    let g = Self.matmul(rows: 64, k: k, n: n, rng: &rng)
    let cal = Self.correlated(rows: 64, k: k, count: 2, rng: &rng)
    var o = F.options(.sparsegpt, nil)
    o.pattern = try NMPattern(n: 2, m: 4)
    o.calibration = cal
    o.shareRows = 8
    let (sgpt, _) = try Pruner.prune(g, o)
    var nm = F.options(.nm, nil)
    nm.pattern = o.pattern
    nm.shareRows = 8
    let (mag, _) = try Pruner.prune(g, nm)
    let w = F.values(sgpt, "w")
    for c0 in stride(from: 0, to: n, by: 8) {
      for g0 in stride(from: 0, to: k, by: 4) {
        let pattern = (g0..<(g0 + 4)).map { w[$0 * n + c0] != 0 }
        #expect(pattern.filter { $0 }.count <= 2)
        for c in c0..<(c0 + 8) { #expect((g0..<(g0 + 4)).map { w[$0 * n + c] != 0 } == pattern, "output \(c) group \(g0)") }
      }
    }
    let es = try Self.outputError(sgpt, g, cal), em = try Self.outputError(mag, g, cal)
    #expect(es < em, "errors: sparsegpt \(es), magnitude \(em)")
  }

  @Test func refusesWhatItCannotDo() throws {
    var rng = SeededRNG(seed: 44)
    let g = Self.matmul(k: 8, n: 4, rng: &rng)
    let cal = Self.runs([3, 8], channelAxis: 1, count: 1, rng: &rng)
    func message(_ o: PruneOptions) -> String {
      do {
        _ = try Pruner.prune(g, o)
        return "pruned"
      } catch { return error.message }
    }
    #expect(message(F.options(.wanda, 0.5)).contains("needs calibration inputs"))
    var global = F.options(.wanda, 0.5, scope: .global)
    global.calibration = cal
    #expect(message(global).contains("--scope global does not apply to wanda"))
    var magnitude = F.options(.magnitude, 0.5)
    magnitude.calibration = cal
    #expect(message(magnitude).contains("--calibration applies only to --method wanda, sparsegpt and channel-taylor"))
    var wrongName = F.options(.wanda, 0.5)
    wrongName.calibration = [["X": cal[0]["x"]!]]
    #expect(message(wrongName).hasPrefix("calibration:"))
    var wrongShape = F.options(.wanda, 0.5)
    wrongShape.calibration = [["x": F.tensor([3, 5], [Float](repeating: 1, count: 15))]]
    #expect(message(wrongShape).hasPrefix("calibration:"))
  }

  /// Uᵀ·U·H = I for the factor SparseGPT sweeps with.
  @Test func inverseCholeskyFactorInvertsH() {
    var rng = SeededRNG(seed: 45)
    let k = 17
    let a = (0..<(k * 2 * k)).map { _ in Double.random(in: -1...1, using: &rng) }  // k x 2k
    var h = [Double](repeating: 0, count: k * k)
    for i in 0..<k { for j in 0..<k { for m in 0..<(2 * k) { h[i * k + j] += a[i * 2 * k + m] * a[j * 2 * k + m] } } }
    let u = SparseGPT.inverseCholeskyUpper(h, k)
    for i in 0..<k { for j in 0..<i { #expect(u[i * k + j] == 0, "U is upper triangular") } }
    for i in 0..<k {
      for j in 0..<k {
        var v = 0.0  // (Uᵀ·U·H)[i, j]
        for m in 0..<k {
          var utu = 0.0
          for p in 0..<k { utu += u[p * k + i] * u[p * k + m] }
          v += utu * h[m * k + j]
        }
        #expect(abs(v - (i == j ? 1 : 0)) < 1e-8, "(\(i), \(j)) = \(v)")
      }
    }
  }

  /// x[rows, K] whose features are correlated (a shared random mix), so reconstruction matters.
  static func correlated(rows: Int, k: Int, count: Int, rng: inout SeededRNG) -> [[String: Tensor]] {
    let mix = (0..<(k * 4)).map { _ in Float.random(in: -1...1, using: &rng) }
    return (0..<count).map { _ in
      var v = [Float](repeating: 0, count: rows * k)
      for r in 0..<rows {
        let z = (0..<4).map { _ in Float.random(in: -1...1, using: &rng) }
        for c in 0..<k {
          v[r * k + c] =
            (0..<4).reduce(0) { $0 + z[$1] * mix[c * 4 + $1] } + 0.1 * Float.random(in: -1...1, using: &rng)
        }
      }
      return ["x": F.tensor([rows, k], v)]
    }
  }

  /// ‖y − y_ref‖² over the calibration runs, y from Sparrow's runtime.
  static func outputError(_ pruned: Graph, _ dense: Graph, _ runs: [[String: Tensor]]) throws -> Double {
    var e = 0.0
    for r in runs {
      let a = try F.run(pruned, r["x"]!).floats, b = try F.run(dense, r["x"]!).floats
      for i in a.indices { e += Double(a[i] - b[i]) * Double(a[i] - b[i]) }
    }
    return e
  }

  @Test(arguments: [0.5, 0.7]) func sparseGPTReconstructsBetterThanMagnitudeAndWanda(_ s: Double) throws {
    var rng = SeededRNG(seed: 46)
    let (k, n) = (40, 12)
    let g = Self.matmul(rows: 64, k: k, n: n, rng: &rng)
    let cal = Self.correlated(rows: 64, k: k, count: 2, rng: &rng)
    var o = F.options(.sparsegpt, s)
    o.calibration = cal
    let (sgpt, _) = try Pruner.prune(g, o)
    o.method = .wanda
    let (wanda, _) = try Pruner.prune(g, o)
    let (mag, _) = try Pruner.prune(g, F.options(.magnitude, s))
    let w = F.values(sgpt, "w")
    // Blocks of 128 columns over all rows: 40 columns x 12 rows in one block.
    #expect(w.filter { $0 == 0 }.count == Int((s * Double(k * n)).rounded()))
    let es = try Self.outputError(sgpt, g, cal), ew = try Self.outputError(wanda, g, cal)
    let em = try Self.outputError(mag, g, cal)
    #expect(es < em && es < ew, "errors: sparsegpt \(es), wanda \(ew), magnitude \(em)")
    // Kept weights moved: the reconstruction is not a mask.
    #expect(zip(w, F.values(g, "w")).contains { $0 != 0 && $0 != $1 })
    // At sparsity 0 nothing is pruned, so nothing moves.
    o.method = .sparsegpt
    o.sparsity = 0
    #expect(F.values(try Pruner.prune(g, o).0, "w") == F.values(g, "w"))
  }

  /// A 3x3 convolution (padded, strided) at 2:4 along input channels: every group at every kernel
  /// position keeps at most 2, and the output error beats magnitude-chosen 2:4.
  @Test func sparseGPTConvNMConformsAndReconstructs() throws {
    var rng = SeededRNG(seed: 47)
    let shape = [6, 8, 3, 3]
    let g = Graph(
      inputs: [ValueInfo(name: "x", dtype: .float32, shape: [.fixed(2), .fixed(8), .fixed(7), .fixed(7)])],
      outputs: [ValueInfo(name: "y")],
      nodes: [
        Node(
          name: "conv", opType: "Conv", inputs: ["x", "w"], outputs: ["y"],
          attributes: ["pads": .ints([1, 1, 1, 1]), "strides": .ints([2, 1]), "kernel_shape": .ints([3, 3])])
      ], constants: ["w": F.tensor(shape, F.distinct(shape.reduce(1, *), rng: &rng))], opset: 13)
    // Channels mixed from 3 sources, so they are correlated.
    let cal: [[String: Tensor]] = (0..<2).map { _ in
      let src = (0..<(2 * 3 * 49)).map { _ in Float.random(in: -1...1, using: &rng) }
      let mix = (0..<24).map { _ in Float.random(in: -1...1, using: &rng) }
      var v = [Float](repeating: 0, count: 2 * 8 * 49)
      for b in 0..<2 {
        for c in 0..<8 {
          for p in 0..<49 {
            v[(b * 8 + c) * 49 + p] = (0..<3).reduce(0) { $0 + mix[c * 3 + $1] * src[(b * 3 + $1) * 49 + p] }
          }
        }
      }
      return ["x": F.tensor([2, 8, 7, 7], v)]
    }
    var o = F.options(.sparsegpt, nil)
    o.pattern = try NMPattern(n: 2, m: 4)
    o.calibration = cal
    let (sgpt, _) = try Pruner.prune(g, o)
    var nm = F.options(.nm, nil)
    nm.pattern = o.pattern
    let (mag, _) = try Pruner.prune(g, nm)
    let w = F.values(sgpt, "w")
    for f in 0..<6 {
      for pos in 0..<9 {
        for g0 in stride(from: 0, to: 8, by: 4) {
          let nonzero = (g0..<(g0 + 4)).filter { w[f * 72 + $0 * 9 + pos] != 0 }.count
          #expect(nonzero <= 2, "filter \(f) position \(pos) group \(g0)")
        }
      }
    }
    let es = try Self.outputError(sgpt, g, cal), em = try Self.outputError(mag, g, cal)
    #expect(es < em, "errors: sparsegpt \(es), magnitude \(em)")
  }
}
