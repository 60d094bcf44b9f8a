/// The input gate around a MatMul/Gemm with a constant weight (issue 20, TEAL's rule): per
/// token, inputs whose magnitude is below a threshold count as zero and the weight rows they
/// would multiply are not read. The weight is kept a second time, input-channel-major (dense,
/// or CSC when at least `sparseAbove` of it is zeros), for the gated kernels (Kernels/gate);
/// several tokens through a sparse weight instead run the planned kernel on the input with the
/// skipped values zeroed (`masks`). With the gate off the layer runs exactly as planned (`inner`).
/// - `threshold(s)`: the layer's calibrated threshold (`GateCalibration`) for skipping `s`;
/// - `topk(r)`: per token, the fraction `r` of inputs with the largest |x| (ties at the cut kept);
/// - `zero`: per token, inputs that are exactly ±0.
/// A single token runs as a matrix-vector product over its own kept inputs; several tokens go
/// through in tiles of eight sharing the union of their kept inputs (one weight row read serves
/// the tile's register block), the weight in column blocks that stay in L2 while every tile goes
/// through them. Tiles, then column blocks, are split between the run's threads.
struct GatedLinearStep: GateStep {
  let inner: LinearStep
  let node: String
  /// The K-major copy the gated kernels read; nil when the layer runs `inner` on a masked input.
  let weight: GatedKernels.Weight?
  /// Weights with at least this zero fraction are kept as CSC (the CSR break-even, DESIGN.md).
  static let sparseAbove = 0.7

  var rows: Int { inner.rows }
  var k: Int { inner.k }
  var out: Int { inner.out }
  var tileRows: Int { rows == 1 ? 1 : GatedKernels.maxTileRows }
  /// Several tokens through a sparse weight: the planned sparse kernel on the input with the
  /// skipped values zeroed gives the gated result, and beats the gated CSC kernel (a scalar
  /// scatter per kept input: 0.13–0.32× the planned CSR on MiniLM 90% at 1 × 128), so nothing is
  /// skipped there; one token keeps the gated kernel (it reads only the kept inputs' weights).
  var masks: Bool { weight == nil }
  private static func align(_ n: Int) -> Int { (n + 63) / 64 * 64 }
  private var workspaceSpan: Int {
    masks
      ? Self.align(inner.scratchBytes) + Self.align(rows * k * 4)
      : Self.align(GatedKernels.workspaceBytes(rows: rows, k: k, tileRows: tileRows))
  }
  private var gatedBytes: Int { workspaceSpan + (rows + k) * 4 }
  var scratchBytes: Int { max(inner.scratchBytes, gatedBytes) }

  /// `inner` gated, or nil when its input is not token-major (Gemm with transA = 1).
  /// `w` is the layer's weight as the kernels see it (`out x K`, row-major).
  init?(_ inner: LinearStep, node: String, w: [Float]) {
    guard !inner.aTransposed, w.count == inner.out * inner.k else { return nil }
    self.inner = inner
    self.node = node
    let zeros = w.reduce(0) { $0 + ($1 == 0 ? 1 : 0) }
    let sparse = Double(zeros) >= Self.sparseAbove * Double(max(w.count, 1))
    weight =
      sparse && inner.rows > 1 ? nil : GatedKernels.Weight(rowsMajor: w, n: inner.out, k: inner.k, sparse: sparse)
  }

  func run(_ c: StepContext) throws(RuntimeError) { try inner.run(c) }

  func run(_ c: StepContext, gate: GateRun?) throws(RuntimeError) {
    guard let gate else { return try inner.run(c) }
    if let rec = gate.recorder {
      rec.record(node, c.input(0, Float.self), count: rows * k)
      return try inner.run(c)
    }
    guard let scratch = c.scratch else { throw RuntimeError("gated linear step: no scratch") }
    let x = c.input(0, Float.self), y = c.output(0, Float.self)
    let thr = (scratch + workspaceSpan).assumingMemoryBound(to: Float.self)
    var perRow = false
    switch gate.mode {
    case .off, .model: return try inner.run(c)
    case .zero: thr[0] = .leastNonzeroMagnitude
    case .threshold(let s):
      guard let t = gate.calibration?.threshold(node: node, skip: s) else {
        throw RuntimeError("gate \(gate.mode): no calibrated threshold for this layer (give calibration inputs)")
      }
      thr[0] = t
    case .topk(let r):
      let keep = min(k, max(1, Int((r * Double(k)).rounded(.up))))
      let tmp = thr + rows
      for t in 0..<rows {
        let row = x + t * k
        for i in 0..<k { tmp[i] = row[i].isNaN ? .infinity : abs(row[i]) }
        thr[t] = keep >= k ? 0 : ChannelSelect.select(tmp, count: k, rank: keep - 1)
      }
      perRow = true
    }
    guard let weight else {
      let masked = (scratch + Self.align(inner.scratchBytes)).assumingMemoryBound(to: Float.self)
      let kept = GatedKernels.mask(rows: rows, k: k, x: x, thresholds: thr, perRow: perRow, out: masked)
      try inner.run(c, input: masked)
      gate.log.record(step: gate.step, skippedInputs: rows * k - kept, skippedOutputs: 0, skippedMACs: 0)
      gate.log.noteImages(1)
      return
    }
    let kept = inner.bias.withOptionalPointer { b in
      GatedKernels.run(
        weight, rows: rows, k: k, n: out, x: x, thresholds: thr, perRow: perRow, bias: b, y: y, tileRows: tileRows,
        workspace: scratch, threads: c.threads)
    }
    inner.epilogue(y, addBias: false, threads: c.threads)
    let skipped = rows * k - kept
    gate.log.record(step: gate.step, skippedInputs: skipped, skippedOutputs: 0, skippedMACs: Double(skipped * out))
    gate.log.noteImages(1)
  }

  /// Per run: the tokens' inputs (rows x K) and multiply-adds.
  var gateInfo: GateInfo {
    GateInfo(
      kind: masks ? "input/masked" : (weight?.isSparse == true ? "input/csc" : "input"), inputChannels: rows * k,
      outputChannels: rows * out,
      macsPerImage: Double(rows * k * out))
  }
}

/// A step the runtime gate runs with the run's gate (`Session` hands it `GateRun`): the gated
/// convolutions (`GatedStep`) and linear layers (`GatedLinearStep`).
protocol GateStep: Step {
  func run(_ c: StepContext, gate: GateRun?) throws(RuntimeError)
  /// How this step is gated, for the gate log and `inspect`.
  var gateInfo: GateInfo { get }
}

extension GatedLinearStep {
  /// The weight of a MatMul (`B`, `K x N`) or Gemm (`alpha · B'`) node as the linear step
  /// multiplies it: `N_out x K`, row-major; nil when it is not a constant 2-D float matrix.
  static func weight(_ node: Node, constants: [Tensor?]) -> [Float]? {
    guard constants.count >= 2, let b = constants[1], b.rank == 2, b.dtype == .float32 else { return nil }
    let bf = b.floats
    let (r, c) = (b.shape[0], b.shape[1])
    var transB = false
    var alpha: Float = 1
    if node.opType == "Gemm" {
      if case .int(let t)? = node.attributes["transB"] { transB = t != 0 }
      if case .float(let a)? = node.attributes["alpha"] { alpha = a }
    }
    let (out, k) = transB ? (r, c) : (c, r)
    var w = [Float](repeating: 0, count: out * k)
    for o in 0..<out { for j in 0..<k { w[o * k + j] = alpha * (transB ? bf[o * k + j] : bf[j * out + o]) } }
    return w
  }
}
