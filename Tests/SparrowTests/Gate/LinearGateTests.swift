import Testing

@testable import Sparrow

/// The input gate on MatMul/Gemm layers (issue 20): every registered gated kernel against a
/// plain loop that masks the inputs (|x| < threshold -> 0) and multiplies densely; whole layers
/// under `threshold`, `topk` and `zero` against the ungated layer run on the input masked the
/// same way; the calibration's quantile rule; and the errors for bad gates.
@Suite struct LinearGateTests {
  /// `y[r, o] = bias[o] + Σ_{i kept by r} x[r, i] · w[o, i]` in Double; a kept NaN times a zero
  /// the sparse weight does not store adds nothing.
  static func reference(
    x: [Float], rows: Int, k: Int, w: [Float], n: Int, bias: [Float]?, thresholds: [Float], sparse: Bool
  ) -> [Double] {
    var y = [Double](repeating: 0, count: rows * n)
    for r in 0..<rows {
      let t = thresholds.count == 1 ? thresholds[0] : thresholds[r]
      for o in 0..<n {
        var s = Double(bias?[o] ?? 0)
        for i in 0..<k where !(abs(x[r * k + i]) < t) {
          if sparse && w[o * k + i] == 0 { continue }
          s += Double(x[r * k + i]) * Double(w[o * k + i])
        }
        y[r * n + o] = s
      }
    }
    return y
  }

  static func close(_ got: [Float], _ ref: [Double]) -> Bool {
    got.count == ref.count
      && zip(got, ref).allSatisfy { g, r in r.isNaN ? g.isNaN : abs(Double(g) - r) <= 1e-5 + 1e-4 * abs(r) }
  }

  static let shapes: [(rows: Int, k: Int, n: Int)] = [
    (1, 1, 1), (1, 33, 17), (3, 7, 9), (5, 40, 33), (9, 16, 40), (19, 24, 110), (6, 200, 50),
  ]

  @Test func everyKernelMatchesTheMaskedDenseLoop() throws {
    var rng = SeededRNG(seed: 2020)
    let kernels = GatedKernels.microkernels.filter(\.runnable)
    #expect(kernels.contains { $0.name.hasSuffix("__scalar") && !$0.sparse })
    #expect(kernels.contains { $0.name.hasSuffix("__scalar") && $0.sparse })
    for kernel in kernels {
      for (rows, k, n) in Self.shapes {
        for zeros in [0.0, 0.5, 0.9] {
          let w = (0..<(n * k)).map { _ in Double.random(in: 0..<1, using: &rng) < zeros ? 0 : rng.float() }
          var x = (0..<(rows * k)).map { _ in 2 * rng.float() }
          if rows > 2 { x[k + k / 2] = .nan }
          let bias = (0..<n).map { _ in rng.float() }
          let weight = GatedKernels.Weight(rowsMajor: w, n: n, k: k, sparse: kernel.sparse)
          for thresholds in [[Float(0)], [Float(0.8)], [Float(5)], (0..<rows).map { Float($0 % 3) * 0.5 }] {
            for tile in [1, 3, GatedKernels.maxTileRows] {
              var y = [Float](repeating: .nan, count: rows * n)
              let ws = UnsafeMutableRawPointer.allocate(
                byteCount: GatedKernels.workspaceBytes(rows: rows, k: k, tileRows: tile), alignment: 64)
              defer { ws.deallocate() }
              let kept = GatedKernels.run(
                weight, rows: rows, k: k, n: n, x: x, thresholds: thresholds, perRow: thresholds.count > 1, bias: bias,
                y: &y, tileRows: tile, workspace: ws, microkernel: kernel.index, threads: 1 + tile % 3)
              let ref = Self.reference(
                x: x, rows: rows, k: k, w: w, n: n, bias: bias, thresholds: thresholds, sparse: kernel.sparse)
              #expect(
                Self.close(y, ref),
                "\(kernel.name) rows \(rows) k \(k) n \(n) zeros \(zeros) thr \(thresholds) tile \(tile)")
              let want = (0..<(rows * k)).filter { !(abs(x[$0]) < thresholds[thresholds.count == 1 ? 0 : $0 / k]) }
                .count
              #expect(kept == want, "\(kernel.name): kept \(kept), want \(want)")
            }
          }
        }
      }
    }
  }

  /// `x [1, s, k] · W [k, n] (+ b)` as a MatMul + Add, or a Gemm with transB and alpha.
  static func linear(s: Int, k: Int, n: Int, zeros: Double, gemm: Bool, seed: UInt64) throws -> (
    Graph, [Float], [Float]
  ) {
    var rng = SeededRNG(seed: seed)
    let w = (0..<(n * k)).map { _ in Double.random(in: 0..<1, using: &rng) < zeros ? 0 : rng.float() }  // n x k
    let b = (0..<n).map { _ in rng.float() }
    if gemm {
      let g = Graph(
        inputs: [ValueInfo(name: "x", dtype: .float32, shape: [.fixed(s), .fixed(k)])], outputs: [ValueInfo(name: "y")],
        nodes: [
          Node(
            name: "fc", opType: "Gemm", inputs: ["x", "w", "b"], outputs: ["y"],
            attributes: ["transB": .int(1), "alpha": .float(0.5)])
        ],
        constants: ["w": try Tensor(shape: [n, k], floats: w), "b": try Tensor(shape: [n], floats: b)], opset: 13)
      return (g, w.map { $0 * 0.5 }, b)
    }
    var wt = [Float](repeating: 0, count: k * n)
    for o in 0..<n { for i in 0..<k { wt[i * n + o] = w[o * k + i] } }
    let g = Graph(
      inputs: [ValueInfo(name: "x", dtype: .float32, shape: [.fixed(1), .fixed(s), .fixed(k)])],
      outputs: [ValueInfo(name: "y")],
      nodes: [
        Node(name: "mm", opType: "MatMul", inputs: ["x", "w"], outputs: ["h"]),
        Node(name: "add", opType: "Add", inputs: ["h", "b"], outputs: ["y"]),
      ],
      constants: ["w": try Tensor(shape: [k, n], floats: wt), "b": try Tensor(shape: [n], floats: b)], opset: 13)
    return (g, w, b)
  }

  static func session(_ g: Graph, format: FormatPolicy = .auto) throws -> (Model, Session) {
    var o = PlanOptions(threads: 1, format: format, formatCache: nil)
    o.gateLinears = true
    let m = try Model(graph: g, options: o)
    return (m, Session(plan: try m.plan(shapes: [:])))
  }

  @Test(arguments: [false, true], [0.0, 0.9])
  func thresholdTopkAndZeroEqualTheMaskedInput(gemm: Bool, zeros: Double) throws {
    // One token: the gated kernels (dense or CSC); several: dense tiles, or a sparse weight's
    // planned kernel on the masked input (nothing skipped).
    for s in [1, gemm ? 6 : 5] { try thresholdTopkAndZero(s: s, gemm: gemm, zeros: zeros) }
  }

  func thresholdTopkAndZero(s: Int, gemm: Bool, zeros: Double) throws {
    let (k, n) = (24, 20)
    let (g, w, b) = try Self.linear(s: s, k: k, n: n, zeros: zeros, gemm: gemm, seed: 7)
    let (m, session) = try Self.session(g, format: zeros > 0 ? .fixed(.csr) : .auto)
    #expect(session.gatedLinearNodes.count == 1)
    var rng = SeededRNG(seed: 99)
    let shape = gemm ? [s, k] : [1, s, k]
    let calib = try (0..<3).map { _ in ["x": try Tensor(shape: shape, floats: (0..<(s * k)).map { _ in rng.float() })] }
    session.gateCalibration = try GateCalibration.calibrate(m, inputs: calib)
    let node = session.gatedLinearNodes[0]
    // Inputs of unrelated magnitudes (the tokens' unions hold nearly every input), and inputs whose
    // first half is small for every token (unions of about half).
    let plain = (0..<(s * k)).map { i in i % 7 == 0 ? 0 : rng.float() }
    let shared = (0..<(s * k)).map { i in i % k < k / 2 ? 0.001 * rng.float() : rng.float() }
    for xv in [plain, shared] {
      try thresholdTopkAndZero(session, node: node, xv: xv, shape: shape, w: w, b: b, gemm: gemm, zeros: zeros)
    }
  }

  func thresholdTopkAndZero(
    _ session: Session, node: String, xv: [Float], shape: [Int], w: [Float], b: [Float], gemm: Bool, zeros: Double
  ) throws {
    let (s, k, n) = (shape[shape.count - 2], shape[shape.count - 1], b.count)
    let x = try Tensor(shape: shape, floats: xv)
    for mode: GateMode in [.threshold(0.5), .threshold(0.25), .threshold(0), .topk(0.5), .zero] {
      session.gate = mode
      session.gateLog.reset()
      let y = try session.run(["x": x])["y"]!.floats
      var thr: [Float]
      switch mode {
      case .threshold(let f): thr = [session.gateCalibration!.threshold(node: node, skip: f)!]
      case .zero: thr = [.leastNonzeroMagnitude]
      default:
        thr = (0..<s).map { r in Array(xv[(r * k)..<((r + 1) * k)]).map(abs).sorted(by: >)[k / 2 - 1] }
      }
      let ref = Self.reference(x: xv, rows: s, k: k, w: w, n: n, bias: b, thresholds: thr, sparse: false)
      #expect(Self.close(y, ref), "\(mode) rows \(s) gemm \(gemm) zeros \(zeros)")
      let skipped = session.gateLog.layers[0].skippedInputs
      let masked = zeros > 0 && s > 1  // several tokens through a sparse weight: nothing skipped
      #expect((session.gateLog.layers[0].skippedMACs == 0) == (masked || skipped == 0), "\(mode) rows \(s)")
      if case .threshold(0.5) = mode { #expect(skipped > s * k / 4, "\(mode): skipped \(skipped) of \(s * k)") }
      if case .threshold(0) = mode { #expect(skipped == 0) }
    }
  }

  /// The threshold for S leaves the fraction S of the calibration inputs below it.
  @Test func calibrationSkipsTheAskedFraction() throws {
    let (g, _, _) = try Self.linear(s: 64, k: 32, n: 8, zeros: 0, gemm: false, seed: 3)
    let (m, session) = try Self.session(g)
    var rng = SeededRNG(seed: 5)
    let x = try Tensor(shape: [1, 64, 32], floats: (0..<(64 * 32)).map { _ in rng.float() })
    session.gateCalibration = try GateCalibration.calibrate(m, inputs: [["x": x]])
    for s in [0.25, 0.4, 0.5, 0.65] {
      session.gate = .threshold(s)
      session.gateLog.reset()
      _ = try session.run(["x": x])
      let f = session.gateLog.layers[0].skippedInputFraction
      #expect(abs(f - s) < 0.01, "S = \(s): skipped \(f)")
    }
  }

  @Test func badGatesAreOneLineErrors() throws {
    for bad in ["threshold:1", "threshold:-0.1", "threshold:x", "threshold:", "threshold:100%", "threshold:1.5"] {
      expectError(GateError.self, containing: "the skipped fraction S must be a number in [0, 1)", bad) {
        _ = try GateMode(parsing: bad)
      }
    }
    #expect(try GateMode(parsing: "threshold:50%") == .threshold(0.5))
    #expect(try GateMode(parsing: "threshold:0") == .threshold(0))
    let (g, _, _) = try Self.linear(s: 4, k: 8, n: 8, zeros: 0, gemm: false, seed: 1)
    let (m, session) = try Self.session(g)
    expectError(GateError.self, containing: "the calibration set is empty") {
      _ = try GateCalibration.calibrate(m, inputs: [])
    }
    expectError(GateError.self, containing: "is empty") {
      _ = try GateCalibration.calibrate(m, inputs: [["x": try Tensor(shape: [1, 0, 8], floats: [])]])
    }
    let x = try Tensor(shape: [1, 4, 8], floats: [Float](repeating: 1, count: 32))
    session.gate = .threshold(0.5)
    expectError(RuntimeError.self, containing: "needs a calibration") { _ = try session.run(["x": x]) }
    // A model without gated linear layers: planned without the option, or a convolution only.
    let plain = Session(plan: try Model(graph: g, options: PlanOptions(threads: 1, formatCache: nil)).plan(shapes: [:]))
    plain.gate = .threshold(0.5)
    expectError(RuntimeError.self, containing: "no MatMul/Gemm layer") { _ = try plain.run(["x": x]) }
    var o = PlanOptions(threads: 1, formatCache: nil)
    o.gateLinears = true
    let cnn = try Model(graph: try GateTests.conv(c: 3, m: 4, k: 3, zeros: 0, seed: 1), options: o)
    expectError(GateError.self, containing: "this model has none") {
      _ = try GateCalibration.calibrate(
        cnn, inputs: [["x": try Tensor(shape: [2, 3, 7, 6], floats: [Float](repeating: 1, count: 252))]])
    }
    // A named layer the gate cannot take.
    o.gateLayers = .named(["add"])
    expectModelError("named Add", containing: "is not a layer the gate can skip") {
      _ = try Model(graph: g, options: o).plan(shapes: [:])
    }
  }
}
