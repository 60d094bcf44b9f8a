/// A fully connected layer on the kernels: `Y[r, o] = act(Σ_k A[r, k] W[o, k] + bias[o])` for
/// rows r of A (the B·S tokens of a `[B, S, K]` activation), with W packed (`N_out x K`).
/// A arrives as rows x K (ONNX's layout). A dense weight reads it in place: OpenBLAS computes
/// `A · Wᵀ` straight into Y (`dense`). The sparse kernels read X as K x rows with unit stride
/// along rows, so for them more than one row is transposed through scratch (a single row is
/// already K x 1) and the kernels' `N_out x rows` product is transposed back. Measured on
/// MiniLM's shapes (rows 128, K 384/1536, 1 thread): the two transposes cost about 0.6 ms a layer
/// (3.5 ms a run), a tenth of the dense product, too much to keep on the dense path; next to
/// the sparse products they are the price of the kernels' layout (a kernel reading the
/// row-major tokens would gather along K and lose the SIMD over rows). Between two such layers
/// in a row (a feed-forward block) the activation stays K-major and neither transpose runs
/// (`LinearChain`).
struct LinearStep: Step, @unchecked Sendable {
  let packed: PackedMatrix
  let rows: Int
  /// A is stored K x rows already (Gemm transA = 1, or the layer before left its output so:
  /// `LinearChain`).
  var aTransposed: Bool
  /// Y is left as the kernels write it, `out x rows` (no transpose back): the one step reading
  /// it is a linear layer that takes it with `aTransposed` (`LinearChain`).
  var outputTransposed = false
  let bias: [Float]?
  /// Added after the product, broadcast to rows x out (Gemm's C when it is not a row vector).
  let addend: [Float]?
  let addendShape: (Int, Int)
  let lo: Float, hi: Float
  /// A fused Gelu, applied last.
  var gelu: FusedEpilogue.GeluForm? = nil
  /// W (`N_out x K`, row-major) when the chosen format is dense: one OpenBLAS product on A in place.
  var dense: [Float]? = nil
  /// The pixel-major kernel on A and Y as stored (`LinearChoice`: timed against the format's
  /// step; its panels skip the columns their 16 outputs share as zero).
  var panel: PanelLinear? = nil
  /// What `LinearChoice` measured for this layer (nil when it measured nothing): what
  /// `LinearChain.rechoosePairs` weighs when a pair could pass its activation K-major.
  var timings: LinearTimings? = nil
  var workspaceBytes: Int
  var out: Int { packed.rows }
  var k: Int { packed.cols }
  var transposes: Bool { rows > 1 && dense == nil && panel == nil }
  /// The transposed operands, rounded up so the kernels' workspace after them is 64-byte aligned.
  private var transposeSpan: Int { transposes ? ((k + out) * rows * 4 + 63) / 64 * 64 : 0 }
  var scratchBytes: Int { transposeSpan + workspaceBytes }

  func run(_ c: StepContext) throws(RuntimeError) { try run(c, input: nil) }

  /// The product on `input` instead of the step's input 0 when given (the input gate's masked
  /// copy, `GatedLinearStep`); the scratch is used as always.
  func run(_ c: StepContext, input: UnsafePointer<Float>?) throws(RuntimeError) {
    let a = input ?? c.input(0, Float.self)
    if let panel {
      try runPanel(c, panel, a: a)
      return
    }
    if let dense {
      runDense(c, dense, a: a)
      return
    }
    let y = c.output(0, Float.self)
    let scratch = c.scratch?.assumingMemoryBound(to: Float.self)
    var x = a
    var yk = y
    if transposes, let s = scratch {
      if !aTransposed {
        Transpose.blocked(a, rows: rows, cols: k, into: s, threads: c.threads)
        x = UnsafePointer(s)
      }
      yk = outputTransposed ? y : s + k * rows
    }
    let ws = workspaceBytes > 0 ? c.scratch.map { $0 + transposeSpan } : nil
    // The kernel clamps only when nothing comes after its product.
    let kernelClamps = addend == nil && gelu == nil
    let fusedLo: Float = kernelClamps ? lo : -.infinity, fusedHi: Float = kernelClamps ? hi : .infinity
    do {
      try bias.withOptionalPointer { (b) throws(KernelError) in
        try SpMMRunner.run(
          packed, x: x, xStride: rows, n: rows, y: yk, yStride: rows, bias: b, lo: fusedLo, hi: fusedHi,
          workspace: ws.map { UnsafeMutableRawPointer(mutating: $0) }, workspaceBytes: workspaceBytes,
          threads: c.threads)
      }
    } catch { throw RuntimeError(error.message) }
    if transposes && !outputTransposed {
      Transpose.blocked(UnsafePointer(yk), rows: out, cols: rows, into: y, threads: c.threads)
    }
    if let add = addend {
      let (ar, ac) = addendShape
      for r in 0..<rows {
        for o in 0..<out {
          let v = y[r * out + o] + add[(ar == 1 ? 0 : r) * ac + (ac == 1 ? 0 : o)]
          y[r * out + o] = min(max(v, lo), hi)
        }
      }
    }
    if let gelu { RowKernels.gelu(gelu, count: rows * out, x: y, y: y, threads: c.threads) }
  }
}

/// Plan-time milliseconds of one linear layer, caches evicted as inside a model: its weight's
/// kernel alone (`FormatChooser`), the format's whole step (the kernel with the transposes of A
/// and Y around it, and the epilogue), and the pixel-major panel step.
struct LinearTimings: Sendable, Equatable {
  var kernel: Double
  var step: Double
  var panel: Double
}

extension LinearStep {
  /// The same layer on its format's kernels instead of the pixel-major panel (a sparse format:
  /// the dense one runs OpenBLAS on A in place and is never switched).
  var onKernels: LinearStep {
    var s = self
    s.panel = nil
    s.dense = nil
    s.workspaceBytes = SpMMRunner.workspaceBytes(packed, n: rows)
    return s
  }

  /// `Y = A · Wᵀ` by OpenBLAS on A as stored, then bias, clamp and GELU in one pass over Y.
  func runDense(_ c: StepContext, _ w: [Float], a: UnsafePointer<Float>) {
    let y = c.output(0, Float.self)
    let shape = BatchedGemm.Shape(
      m: rows, n: out, k: k, lda: aTransposed ? rows : k, ldb: k, ldc: out, transA: aTransposed, transB: true)
    w.withUnsafeBufferPointer { wb in
      BatchedGemm.run(
        shape, a: a, aOffsets: [0], b: wb.baseAddress!, bOffsets: [0], c: y, cOffsets: [0], threads: c.threads)
    }
    epilogue(y, addBias: true, threads: c.threads)
  }

  /// `Y = A · Wᵀ` by the pixel-major kernel on A and Y as stored, with the bias and (when
  /// nothing comes after it) the clamp in its epilogue; then the addend, clamp and GELU.
  func runPanel(_ c: StepContext, _ panel: PanelLinear, a: UnsafePointer<Float>) throws(RuntimeError) {
    let y = c.output(0, Float.self)
    let kernelClamps = addend == nil
    do {
      try bias.withOptionalPointer { (b) throws(KernelError) in
        try panel.run(
          a: a, rows: rows, lda: k, bias: b, lo: kernelClamps ? lo : -.infinity, hi: kernelClamps ? hi : .infinity,
          y: y, ldy: out, threads: c.threads)
      }
    } catch { throw RuntimeError(error.message) }
    if addend != nil || gelu != nil { epilogue(y, addBias: false, threads: c.threads) }
  }

  /// After a product into Y (`rows x out`): the bias (when `addBias`), the addend, the clamp and
  /// GELU, in one pass over Y (the dense path and the input gate's, `GatedLinearStep`).
  func epilogue(_ y: UnsafeMutablePointer<Float>, addBias: Bool, threads: Int) {
    let (ar, ac) = addendShape
    (addBias ? bias : nil).withOptionalPointer { b in
      for r in 0..<rows {
        let row = y + r * out
        if let b { for o in 0..<out { row[o] += b[o] } }
        if let add = addend { for o in 0..<out { row[o] += add[(ar == 1 ? 0 : r) * ac + (ac == 1 ? 0 : o)] } }
        if lo > -.infinity || hi < .infinity { for o in 0..<out { row[o] = min(max(row[o], lo), hi) } }
      }
    }
    if let gelu { RowKernels.gelu(gelu, count: rows * out, x: y, y: y, threads: threads) }
  }
}

/// Gemm: `Y = alpha · A' · B' + beta · C` with B constant (a layer's weight).
enum GemmOp: OpBuilder {
  static let opTypes = ["Gemm"]

  static func build(_ c: inout BuildContext) throws(ModelError) -> any Step {
    let a = try c.input(0), b = try c.input(1)
    guard a.shape.count == 2, b.shape.count == 2, a.dtype == .float32 else {
      throw c.error("Gemm takes 2-D float32 A and B, got \(a) and \(b)")
    }
    let transA = try c.int("transA", 0) != 0, transB = try c.int("transB", 0) != 0
    let alpha = try c.float("alpha", 1), beta = try c.float("beta", 1)
    let rows = transA ? a.shape[1] : a.shape[0], k = transA ? a.shape[0] : a.shape[1]
    let kb = transB ? b.shape[1] : b.shape[0], out = transB ? b.shape[0] : b.shape[1]
    guard k == kb else { throw c.error("A is \(a.shape) and B is \(b.shape): inner sizes \(k) and \(kb) differ") }
    if c.constant(1) == nil {
      guard c.node.epilogue.isEmpty else { throw c.error("a fused epilogue needs a constant B") }
      var cShape: [Int] = []
      if c.hasInput(2), beta != 0 {
        cShape = try c.input(2).shape
        guard broadcastShapes(cShape, [rows, out]) == [rows, out] else {
          throw c.error("C of shape \(cShape) does not broadcast to \(rows)x\(out)")
        }
      }
      try c.setOutputs([TensorType(.float32, [rows, out])])
      return GemmLoopStep(
        rows: rows, k: k, out: out, transA: transA, transB: transB, alpha: alpha, beta: beta,
        cIndex: c.hasInput(2) && beta != 0 ? BroadcastIndex(from: cShape, to: [rows, out]) : nil)
    }
    let bw = c.constant(1)!
    var bias: [Float]? = nil, addend: [Float]? = nil, addShape = (1, 1)
    if c.hasInput(2), beta != 0 {
      let ct = try c.input(2)
      var dims = ct.shape
      while dims.count < 2 { dims.insert(1, at: 0) }
      guard dims.count == 2, dims[0] == 1 || dims[0] == rows, dims[1] == 1 || dims[1] == out else {
        throw c.error("C of shape \(ct.shape) does not broadcast to \(rows)x\(out)")
      }
      guard let cv = c.constant(2) else { throw c.error("C must be a constant") }
      let scaled = cv.floats.map { $0 * beta }
      if dims[0] == 1 {
        bias = dims[1] == out ? scaled : [Float](repeating: scaled[0], count: out)
      } else {
        addend = scaled
        addShape = (dims[0], dims[1])
      }
    }
    // W is out x K: B' transposed, scaled by alpha.
    let bf = bw.floats
    var w = [Float](repeating: 0, count: out * k)
    for o in 0..<out { for j in 0..<k { w[o * k + j] = alpha * (transB ? bf[o * k + j] : bf[j * out + o]) } }
    let e = try linearEpilogue(c, out: out)
    if let fb = e.bias {
      // A fused Add(bias) after a Gemm: one more row vector, or onto the addend.
      if addend != nil {
        let (ar, ac) = addShape
        var full = [Float](repeating: 0, count: rows * out)
        for r in 0..<rows {
          for o in 0..<out { full[r * out + o] = addend![(ar == 1 ? 0 : r) * ac + (ac == 1 ? 0 : o)] + fb[o] }
        }
        (addend, addShape) = (full, (rows, out))
      } else {
        bias = bias.map { zip($0, fb).map { $0 + $1 } } ?? fb
      }
    }
    let (lo, hi) = (e.lo, e.hi)
    try c.setOutputs([TensorType(.float32, [rows, out])])
    let chosen = try FormatChooser.choose(
      w, rows: out, cols: k, n: rows, kPerChannel: 1, options: c.options)
    let profile = SparsityProfile(w, rows: out, cols: k)
    c.layer = LayerReport(
      node: c.node.name, op: "Gemm", m: out, k: k, n: rows,
      zeroFraction: profile.zeroFraction, format: chosen.matrix.format.description,
      kernel: chosen.matrix.kernelName, measured: chosen.measured, measuredFromCache: chosen.cached, profile: profile)
    let step = LinearStep(
      packed: chosen.matrix, rows: rows, aTransposed: transA, bias: bias, addend: addend, addendShape: addShape,
      lo: lo, hi: hi, gelu: e.gelu, dense: chosen.matrix.format == .dense ? w : nil,
      workspaceBytes: SpMMRunner.workspaceBytes(chosen.matrix, n: rows))
    return try LinearChoice.choose(&c, step, weights: w, profile: profile)
  }
}

/// MatMul with numpy broadcasting. A constant 2-D B is a layer weight and runs on the kernels;
/// otherwise a plain batched loop.
enum MatMulOp: OpBuilder {
  static let opTypes = ["MatMul"]

  static func build(_ c: inout BuildContext) throws(ModelError) -> any Step {
    if let views = c.node.epilogue.matmulViews { return try StridedMatMulStep.build(&c, views) }
    let a = try c.input(0), b = try c.input(1)
    guard a.dtype == .float32, b.dtype == .float32, !a.shape.isEmpty, !b.shape.isEmpty else {
      throw c.error("MatMul takes float32 tensors of rank >= 1, got \(a) and \(b)")
    }
    let aShape = a.shape.count == 1 ? [1] + a.shape : a.shape
    let bShape = b.shape.count == 1 ? b.shape + [1] : b.shape
    let m = aShape[aShape.count - 2], k = aShape[aShape.count - 1]
    let kb = bShape[bShape.count - 2], n = bShape[bShape.count - 1]
    guard k == kb else { throw c.error("inner sizes differ: A \(a.shape), B \(b.shape)") }
    let aBatch = Array(aShape.dropLast(2)), bBatch = Array(bShape.dropLast(2))
    guard let batch = broadcastShapes(aBatch, bBatch) else {
      throw c.error("batch dimensions \(aBatch) and \(bBatch) do not broadcast")
    }
    var outShape = batch + [m, n]
    if a.shape.count == 1 { outShape.remove(at: outShape.count - 2) }
    if b.shape.count == 1 { outShape.removeLast() }
    try c.setOutputs([TensorType(.float32, outShape)])

    if let bw = c.constant(1), b.shape.count == 2 {
      let rows = aShape.dropLast().reduce(1, *)
      let bf = bw.floats
      var w = [Float](repeating: 0, count: n * k)
      for o in 0..<n { for j in 0..<k { w[o * k + j] = bf[j * n + o] } }
      let chosen = try FormatChooser.choose(
        w, rows: n, cols: k, n: rows, kPerChannel: 1, options: c.options)
      let profile = SparsityProfile(w, rows: n, cols: k)
      c.layer = LayerReport(
        node: c.node.name, op: "MatMul", m: n, k: k, n: rows,
        zeroFraction: profile.zeroFraction, format: chosen.matrix.format.description,
        kernel: chosen.matrix.kernelName, measured: chosen.measured, measuredFromCache: chosen.cached, profile: profile)
      let e = try linearEpilogue(c, out: n)
      let step = LinearStep(
        packed: chosen.matrix, rows: rows, aTransposed: false, bias: e.bias, addend: nil, addendShape: (1, 1), lo: e.lo,
        hi: e.hi, gelu: e.gelu, dense: chosen.matrix.format == .dense ? w : nil,
        workspaceBytes: SpMMRunner.workspaceBytes(chosen.matrix, n: rows))
      return try LinearChoice.choose(&c, step, weights: w, profile: profile)
    }
    guard c.node.epilogue.isEmpty else { throw c.error("a fused epilogue needs a constant 2-D B") }
    return BatchedMatMulStep(aBatch: aBatch, bBatch: bBatch, batch: batch, m: m, k: k, n: n)
  }
}

/// What the passes fused into a linear layer (bias, clamp or GELU), checked against its width.
func linearEpilogue(_ c: BuildContext, out: Int) throws(ModelError) -> (
  bias: [Float]?, lo: Float, hi: Float, gelu: FusedEpilogue.GeluForm?
) {
  let e = c.node.epilogue
  guard e.affine == nil, e.learnedGate == nil else { throw c.error("this epilogue is not supported here") }
  if let b = e.bias, b.count != out { throw c.error("fused bias has \(b.count) values for \(out) outputs") }
  return (e.bias, e.bounds.lo, e.bounds.hi, e.gelu)
}

/// Gemm with B computed at run time: a plain loop.
struct GemmLoopStep: Step {
  let rows: Int, k: Int, out: Int
  let transA: Bool, transB: Bool
  let alpha: Float, beta: Float
  let cIndex: BroadcastIndex?

  func run(_ c: StepContext) throws(RuntimeError) {
    let a = c.input(0, Float.self), b = c.input(1, Float.self), y = c.output(0, Float.self)
    let cv: UnsafePointer<Float>? = cIndex != nil ? c.input(2, Float.self) : nil
    for r in 0..<rows {
      for o in 0..<out {
        var acc: Float = 0
        for j in 0..<k {
          acc += (transA ? a[j * rows + r] : a[r * k + j]) * (transB ? b[o * k + j] : b[j * out + o])
        }
        var v = alpha * acc
        if let cv, let ci = cIndex { v += beta * cv[ci.source(r * out + o)] }
        y[r * out + o] = v
      }
    }
  }
}

/// Activation x activation MatMul (attention's Q·Kᵀ, P·V): one OpenBLAS product per batch
/// index, broadcast batch dimensions read in place.
struct BatchedMatMulStep: Step {
  let shape: BatchedGemm.Shape
  let aOffsets: [Int], bOffsets: [Int], cOffsets: [Int]

  init(aBatch: [Int], bBatch: [Int], batch: [Int], m: Int, k: Int, n: Int) {
    let total = batch.reduce(1, *)
    let aIndex = BroadcastIndex(from: aBatch, to: batch), bIndex = BroadcastIndex(from: bBatch, to: batch)
    shape = BatchedGemm.Shape(m: m, n: n, k: k, lda: k, ldb: n, ldc: n)
    aOffsets = (0..<total).map { aIndex.source($0) * m * k }
    bOffsets = (0..<total).map { bIndex.source($0) * k * n }
    cOffsets = (0..<total).map { $0 * m * n }
  }

  func run(_ c: StepContext) throws(RuntimeError) {
    BatchedGemm.run(
      shape, a: c.input(0, Float.self), aOffsets: aOffsets, b: c.input(1, Float.self), bOffsets: bOffsets,
      c: c.output(0, Float.self), cOffsets: cOffsets, threads: c.threads)
  }
}

/// Numpy broadcasting of two shapes, or nil.
func broadcastShapes(_ a: [Int], _ b: [Int]) -> [Int]? {
  let r = max(a.count, b.count)
  var out = [Int](repeating: 1, count: r)
  for i in 0..<r {
    let x = i < r - a.count ? 1 : a[i - (r - a.count)]
    let y = i < r - b.count ? 1 : b[i - (r - b.count)]
    guard x == y || x == 1 || y == 1 else { return nil }
    out[i] = x == 1 ? y : x
  }
  return out
}

/// Maps a flat index of a broadcast result back to the flat index of one operand.
struct BroadcastIndex: Sendable {
  let outShape: [Int]
  let strides: [Int]  // operand strides aligned to outShape, 0 where broadcast

  init(from shape: [Int], to out: [Int]) {
    outShape = out
    let pad = out.count - shape.count
    var s = [Int](repeating: 0, count: out.count)
    var acc = 1
    for i in stride(from: shape.count - 1, through: 0, by: -1) {
      s[i + pad] = shape[i] == 1 ? 0 : acc
      acc *= shape[i]
    }
    strides = s
  }

  func source(_ flat: Int) -> Int {
    var rem = flat, src = 0
    for i in stride(from: outShape.count - 1, through: 0, by: -1) {
      let d = outShape[i]
      src += (rem % d) * strides[i]
      rem /= d
    }
    return src
  }
}
