import Foundation
import Testing

@testable import Sparrow

/// MatMul and Gemm with a constant weight (linear layers) on the sparse kernels, in every forced
/// format, against a plain Swift reference: 2-D and 3-D activations, the weight as `[K, N]`, as
/// `Transpose([N, K])` and as Gemm transB = 1, a fused bias and GELU/ReLU, and the edges
/// (K = 1, N_out not a multiple of any tile, S = 1). Kernel bound: `|y - ref| <= 1e-5 + 1e-4·|ref|`
/// on erf GELU is loosened to 1e-4 absolute (Foundation's erf against Double's).
@Suite struct LinearLayerTests {
  enum Form: String, CaseIterable, Sendable { case matmul, matmulTransposed, gemmTransB }
  enum Act: String, CaseIterable, Sendable { case none, relu, gelu, geluTanh }

  struct Case: Sendable, CustomStringConvertible {
    /// Leading activation dimensions ([] for a 2-D activation).
    let batch: [Int]
    let rows: Int, k: Int, n: Int
    var description: String { "\(batch)x\(rows)x\(k)->\(n)" }
  }

  static let cases = [
    Case(batch: [], rows: 5, k: 8, n: 6), Case(batch: [2], rows: 7, k: 16, n: 13),
    Case(batch: [1], rows: 1, k: 12, n: 9), Case(batch: [], rows: 4, k: 1, n: 3),
    Case(batch: [3], rows: 9, k: 20, n: 17), Case(batch: [], rows: 1, k: 32, n: 40),
  ]

  /// W as the kernels see it (`n x k`), 2:4 along K where K allows, every third row empty: each
  /// format can take it.
  static func weight(_ n: Int, _ k: Int, seed: UInt64) -> [Float] {
    var rng = SeededRNG(seed: seed)
    var w = (0..<(n * k)).map { _ in rng.float() }
    for o in 0..<n {
      if o % 3 == 1 { for j in 0..<k { w[o * k + j] = 0 }; continue }
      if k % 4 == 0 { for g in 0..<(k / 4) { w[o * k + 4 * g + (o + g) % 4] = 0; w[o * k + 4 * g + (o + g + 2) % 4] = 0 } }
    }
    return w
  }

  static func graph(_ c: Case, form: Form, act: Act, bias: Bool) throws -> (Graph, [Float], [Float]) {
    let w = weight(c.n, c.k, seed: UInt64(c.k * 131 + c.n))
    var rng = SeededRNG(seed: 77)
    let b = (0..<c.n).map { _ in rng.float() }
    var nodes: [Node] = []
    var constants: [String: Tensor] = [:]
    let xShape = form == .gemmTransB ? [c.batch.reduce(1, *) * c.rows, c.k] : c.batch + [c.rows, c.k]
    var wkn = [Float](repeating: 0, count: c.k * c.n)
    for o in 0..<c.n { for j in 0..<c.k { wkn[j * c.n + o] = w[o * c.k + j] } }
    switch form {
    case .matmul:
      constants["W"] = try Tensor(shape: [c.k, c.n], floats: wkn)
      nodes.append(Node(name: "fc", opType: "MatMul", inputs: ["x", "W"], outputs: ["y0"]))
    case .matmulTransposed:
      constants["Wt"] = try Tensor(shape: [c.n, c.k], floats: w)
      nodes.append(Node(name: "t", opType: "Transpose", inputs: ["Wt"], outputs: ["W"], attributes: ["perm": .ints([1, 0])]))
      nodes.append(Node(name: "fc", opType: "MatMul", inputs: ["x", "W"], outputs: ["y0"]))
    case .gemmTransB:
      constants["Wt"] = try Tensor(shape: [c.n, c.k], floats: w)
      nodes.append(Node(name: "fc", opType: "Gemm", inputs: ["x", "Wt"], outputs: ["y0"], attributes: ["transB": .int(1)]))
    }
    var last = "y0"
    if bias {
      constants["b"] = try Tensor(shape: [c.n], floats: b)
      nodes.append(Node(name: "bias", opType: "Add", inputs: ["b", last], outputs: ["y1"]))
      last = "y1"
    }
    switch act {
    case .none: break
    case .relu: nodes.append(Node(name: "act", opType: "Relu", inputs: [last], outputs: ["y2"])); last = "y2"
    case .gelu, .geluTanh:
      nodes.append(
        Node(name: "act", opType: "Gelu", inputs: [last], outputs: ["y2"],
          attributes: act == .geluTanh ? ["approximate": .string("tanh")] : [:]))
      last = "y2"
    }
    let g = Graph(
      inputs: [ValueInfo(name: "x", dtype: .float32, shape: xShape.map { .fixed($0) })],
      outputs: [ValueInfo(name: last)], nodes: nodes, constants: constants, opset: 20)
    return (g, w, b)
  }

  static func reference(_ x: [Float], rows: Int, _ w: [Float], k: Int, n: Int, bias: [Float]?, act: Act) -> [Float] {
    var y = [Float](repeating: 0, count: rows * n)
    for r in 0..<rows {
      for o in 0..<n {
        var acc = 0.0
        for j in 0..<k { acc += Double(x[r * k + j]) * Double(w[o * k + j]) }
        if let bias { acc += Double(bias[o]) }
        switch act {
        case .none: break
        case .relu: acc = max(acc, 0)
        case .gelu: acc = 0.5 * acc * (1 + erf(acc / 2.0.squareRoot()))
        case .geluTanh: acc = 0.5 * acc * (1 + tanh(0.7978845608028654 * (acc + 0.044715 * acc * acc * acc)))
        }
        y[r * n + o] = Float(acc)
      }
    }
    return y
  }

  static func check(
    _ c: Case, form: Form, act: Act, bias: Bool, format: WeightFormat.Kind, optimize: Bool,
    linear: LinearAlgorithm = .kernels
  ) throws {
    var (g, w, b) = try graph(c, form: form, act: act, bias: bias)
    if optimize { g = try Passes.optimize(g) }
    let rows = c.batch.reduce(1, *) * c.rows
    var rng = SeededRNG(seed: 9)
    let xv = (0..<(rows * c.k)).map { _ in rng.float() }
    let xShape = form == .gemmTransB ? [rows, c.k] : c.batch + [c.rows, c.k]
    let x = try Tensor(shape: xShape, floats: xv)
    var options = PlanOptions(threads: 2, format: .fixed(format), formatCache: nil)
    options.linearAlgorithm = linear
    let plan = try Planner.plan(g, shapes: ["x": xShape], values: ["x": x], options: options)
    let label = "\(c) \(form) \(act) bias \(bias) \(format) optimize \(optimize) \(linear)"
    #expect(plan.layers.count == 1, "\(label): \(plan.layers.map(\.node))")
    if linear == .panel {
      #expect(plan.layers.first?.format == "panel", "\(label): \(plan.layers.first?.format ?? "-")")
    } else if let l = plan.layers.first, format != .nm || c.k % 4 == 0 {
      #expect(l.format.hasPrefix(format == .nm ? "2:4" : format == .bsr ? "bsr" : format.rawValue), "\(label): \(l.format)")
    }
    let got = try Session(plan: plan).run(["x": x])[g.outputs[0].name]!
    #expect(got.shape == Array(xShape.dropLast()) + [c.n], "\(label): shape \(got.shape)")
    let ref = reference(xv, rows: rows, w, k: c.k, n: c.n, bias: bias ? b : nil, act: act)
    let tol: Float = act == .gelu || act == .geluTanh ? 1e-4 : 0
    for (i, (y, r)) in zip(got.floats, ref).enumerated() where abs(y - r) > 1e-5 + 1e-4 * abs(r) + tol {
      Issue.record("\(label): y[\(i)] = \(y), reference \(r)")
      break
    }
  }

  @Test(arguments: cases, WeightFormat.Kind.allCases)
  func everyFormatAndForm(_ c: Case, _ format: WeightFormat.Kind) throws {
    for form in Form.allCases {
      try Self.check(c, form: form, act: .none, bias: false, format: format, optimize: false)
      try Self.check(c, form: form, act: .gelu, bias: true, format: format, optimize: true)
    }
  }

  /// The pixel-major kernel on the row-major tokens (`PanelLinear`), forced: every form, fused
  /// bias and activation (this weight's every third row is empty, so panels keep fewer columns).
  @Test(arguments: cases)
  func panelForm(_ c: Case) throws {
    for form in Form.allCases {
      for act in Act.allCases {
        try Self.check(c, form: form, act: act, bias: act != .none, format: .dense, optimize: true, linear: .panel)
      }
      try Self.check(c, form: form, act: .none, bias: false, format: .csr, optimize: false, linear: .panel)
    }
  }

  /// Gemm whose C is a full rows x out matrix (added after the product, then clamped) and
  /// alpha/beta: the panel form, the kernels' and auto (measured) agree with the reference.
  @Test(arguments: [LinearAlgorithm.panel, .kernels, .measure])
  func gemmAddendAllForms(_ linear: LinearAlgorithm) throws {
    let (rows, k, n) = (7, 24, 19)
    let w = Self.weight(n, k, seed: 5)
    var rng = SeededRNG(seed: 31)
    let cm = (0..<(rows * n)).map { _ in rng.float() }
    let xv = (0..<(rows * k)).map { _ in rng.float() }
    let g = Graph(
      inputs: [ValueInfo(name: "x", dtype: .float32, shape: [.fixed(rows), .fixed(k)])],
      outputs: [ValueInfo(name: "y")],
      nodes: [
        Node(
          name: "fc", opType: "Gemm", inputs: ["x", "Wt", "C"], outputs: ["y0"],
          attributes: ["transB": .int(1), "alpha": .float(0.5), "beta": .float(2)]),
        Node(name: "act", opType: "Relu", inputs: ["y0"], outputs: ["y"]),
      ],
      constants: ["Wt": try Tensor(shape: [n, k], floats: w), "C": try Tensor(shape: [rows, n], floats: cm)], opset: 13)
    var options = PlanOptions(threads: 1, formatCache: nil)
    options.linearAlgorithm = linear
    let plan = try Planner.plan(try Passes.optimize(g), options: options)
    if linear == .panel { #expect(plan.layers.first?.format == "panel") }
    if linear == .measure { #expect(plan.layers.first?.measured["panel"] != nil, "\(plan.layers.first?.measured ?? [:])") }
    let got = try Session(plan: plan).run(["x": try Tensor(shape: [rows, k], floats: xv)])["y"]!.floats
    var ref = Self.reference(xv, rows: rows, w, k: k, n: n, bias: nil, act: .none)
    for i in ref.indices { ref[i] = max(0.5 * ref[i] + 2 * cm[i], 0) }
    #expect(firstMismatch(got, ref) == nil, "\(linear)")
  }

  @Test(arguments: Act.allCases)
  func fusedEpilogues(_ act: Act) throws {
    for c in Self.cases.prefix(3) {
      for form in Form.allCases {
        for bias in [false, true] {
          try Self.check(c, form: form, act: act, bias: bias, format: .csr, optimize: true)
          try Self.check(c, form: form, act: act, bias: bias, format: .dense, optimize: false)
        }
      }
    }
  }

  /// A chainable pair goes back to its sparse kernels only where they, less the transposes the
  /// chain removes, beat the pair as chosen by 3%. Figures: MiniLM-L6's feed-forward pair as
  /// timed on Zen 5 (2:4 at 8 x 128 tokens; 2:4 shared by 16 rows at 1 x 128).
  @Test func chainPaysWeighsTheTransposesTheChainRemoves() {
    let up = (k: 384, out: 1536), down = (k: 1536, out: 384)
    let b8Up = LinearTimings(kernel: 4.054, step: 5.753, panel: 5.350)
    let b8Down = LinearTimings(kernel: 4.265, step: 5.597, panel: 5.935)
    // Both on the panel (11.29 ms); chained 4.054 + 1.699 * 0.2 + 4.265 + 1.332 * 0.2 = 8.93 ms.
    #expect(
      LinearChain.chainPays(
        first: b8Up, firstShape: up, firstOnPanel: true, second: b8Down, secondShape: down, secondOnPanel: true))
    // Only the first on the panel: now 5.350 + 5.597 = 10.95 ms, still slower than chained.
    #expect(
      LinearChain.chainPays(
        first: b8Up, firstShape: up, firstOnPanel: true, second: b8Down, secondShape: down, secondOnPanel: false))
    // The panel skipping shared zero columns: 0.608 ms against 0.81 chained.
    let sUp = LinearTimings(kernel: 0.337, step: 0.534, panel: 0.312)
    let sDown = LinearTimings(kernel: 0.427, step: 0.460, panel: 0.296)
    #expect(
      !LinearChain.chainPays(
        first: sUp, firstShape: up, firstOnPanel: true, second: sDown, secondShape: down, secondOnPanel: true))
    // A near-tie (chained 2% faster) stays as chosen; 4% faster switches.
    let tie = LinearTimings(kernel: 1.0, step: 1.0, panel: 1.02)
    #expect(
      !LinearChain.chainPays(
        first: tie, firstShape: up, firstOnPanel: true, second: tie, secondShape: down, secondOnPanel: true))
    let win = LinearTimings(kernel: 1.0, step: 1.0, panel: 1.04)
    #expect(
      LinearChain.chainPays(
        first: win, firstShape: up, firstOnPanel: true, second: win, secondShape: down, secondOnPanel: true))
  }

  /// MatMul + Add(bias) + Gelu is one node; Transpose of the weight folded; a shared output or a
  /// bias that broadcasts over rows leaves the chain alone.
  @Test func passesFuseTheChain() throws {
    let c = Self.cases[1]
    let (g, _, _) = try Self.graph(c, form: .matmulTransposed, act: .gelu, bias: true)
    let opt = try Passes.optimize(g)
    #expect(opt.nodes.map(\.opType) == ["MatMul"])
    #expect(opt.nodes[0].epilogue.bias?.count == c.n)
    #expect(opt.nodes[0].epilogue.gelu == .exact)
    var shared = g
    shared.outputs.append(ValueInfo(name: "y0"))
    #expect(try Passes.optimize(shared).nodes.map(\.opType) == ["MatMul", "Add", "Gelu"])
    var rowBias = g
    rowBias.constants["b"] = try Tensor(shape: [c.rows, 1], floats: [Float](repeating: 1, count: c.rows))
    #expect(try Passes.optimize(rowBias).nodes.map(\.opType) == ["MatMul", "Add", "Gelu"])
    // An epilogue cannot be written back to ONNX.
    #expect(throws: ModelError.self) { try ONNXExporter.encode(opt) }
  }

  /// Weight pruning finds the transposed-weight form's constant and prunes 2:4 along K.
  @Test func pruneFindsTransposedWeight() throws {
    let c = Case(batch: [1], rows: 3, k: 16, n: 8)
    var rng = SeededRNG(seed: 4)
    var (g, _, _) = try Self.graph(c, form: .matmulTransposed, act: .none, bias: false)
    g.constants["Wt"] = try Tensor(shape: [c.n, c.k], floats: (0..<(c.n * c.k)).map { _ in rng.float() })
    let found = WeightLayers.find(g, skipFirstLast: false).layers
    #expect(found.map(\.weight) == ["Wt"])
    #expect(found.first.map { ($0.rows, $0.cols) } ?? (0, 0) == (c.n, c.k))
  }

  /// The GELU every linear layer's epilogue uses (the row kernel of the ISA in force) against
  /// Double's erf and tanh, over the range and at the extremes.
  @Test func fusedGeluIsAccurate() {
    var worst: (Double, Double) = (0, 0)
    var xs = stride(from: -12.0, through: 12.0, by: 0.001).map { Float($0) }
    xs += [-100, -88, -87.5, 87.5, 100, 1e-20, -1e-20, 0, .leastNormalMagnitude]
    var exactY = [Float](repeating: 0, count: xs.count), tanhY = exactY
    RowKernels.gelu(.exact, count: xs.count, x: xs, y: &exactY)
    RowKernels.gelu(.tanh, count: xs.count, x: xs, y: &tanhY)
    for (i, v) in xs.enumerated() {
      let d = Double(v)
      let exact = 0.5 * d * (1 + erf(d / 2.0.squareRoot()))
      let th = 0.5 * d * (1 + tanh(0.7978845608028654 * (d + 0.044715 * d * d * d)))
      worst.0 = max(worst.0, abs(Double(exactY[i]) - exact) / max(1, abs(exact)))
      worst.1 = max(worst.1, abs(Double(tanhY[i]) - th) / max(1, abs(th)))
    }
    #expect(worst.0 <= 1e-6, "exact GELU: worst error \(worst.0)")
    #expect(worst.1 <= 1e-6, "tanh GELU: worst error \(worst.1)")
  }
}
