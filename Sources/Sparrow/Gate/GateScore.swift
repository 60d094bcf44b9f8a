/// `GateScore` (FuseGateScore): a learned gate's score sub-graph in one step. Per image,
/// `s = clamp(alpha · (W' · mean_hw(x)) + beta · b)` (W' = W or Wᵀ by transB, as Gemm), then
/// `g = s · (s >= t)` where `t` is the k-th largest `s` (TopK + ReduceMin: ties may keep more),
/// written as `[N, M, 1, 1]`. The pooling keeps GlobalAveragePool's order of additions.
enum GateScoreOp: OpBuilder {
  static let opTypes = ["GateScore"]

  static func build(_ c: inout BuildContext) throws(ModelError) -> any Step {
    guard c.node.epilogue.gateScore else {
      throw c.error("GateScore is written by Sparrow's FuseGateScore pass, not an ONNX op")
    }
    let x = try c.input(0)
    guard x.dtype == .float32, x.shape.count >= 3 else {
      throw c.error("the gate's input must be float32 N x C x spatial dims, got \(x)")
    }
    let w = try c.requireConstant(1, "the gate's FC weight")
    guard w.rank == 2, w.dtype == .float32 else { throw c.error("the gate's FC weight must be a 2-D float32 matrix") }
    let transB = try c.int("transB", 0) != 0
    let alpha = try c.float("alpha", 1), beta = try c.float("beta", 1)
    let (m, cin) = transB ? (w.shape[0], w.shape[1]) : (w.shape[1], w.shape[0])
    let n = x.shape[0], channels = x.shape[1]
    let plane = x.count / max(n * channels, 1)
    guard channels == cin, plane > 0 else {
      throw c.error("the gate's FC takes \(cin) inputs, its input \(x) has \(channels) channels of \(plane) values")
    }
    var bias = [Float](repeating: 0, count: m)
    if c.hasInput(2) {
      let b = try c.requireConstant(2, "the gate's FC bias")
      guard b.dtype == .float32, b.count == m || b.count == 1 else {
        throw c.error("the gate's FC bias has \(b.count) values for \(m) outputs")
      }
      let bf = b.floats
      for o in 0..<m { bias[o] = beta * bf[b.count == 1 ? 0 : o] }
    }
    let kt = try c.requireConstant(3, "the gate's TopK k")
    guard kt.count == 1, let k = kt.int64s.first, k >= 1, k <= m else {
      throw c.error("the gate's TopK keeps k = \(kt.int64s.first.map(String.init) ?? "?") of \(m) channels: k must be in 1...\(m)")
    }
    let wf = w.floats
    var cols = [Float](repeating: 0, count: m * cin)
    for o in 0..<m { for i in 0..<cin { cols[i * m + o] = alpha * (transB ? wf[o * cin + i] : wf[i * m + o]) } }
    try c.setOutputs([TensorType(.float32, [n, m, 1, 1])])
    let (lo, hi) = c.node.epilogue.bounds
    return GateScoreStep(
      images: n, channels: channels, plane: plane, m: m, k: Int(k), w: cols, bias: bias, lo: lo, hi: hi)
  }
}

struct GateScoreStep: Step {
  let images: Int, channels: Int, plane: Int, m: Int, k: Int
  /// `channels x m` (input-major, so that all outputs accumulate together), alpha folded in;
  /// bias with beta folded in.
  let w: [Float]
  let bias: [Float]
  let lo: Float, hi: Float

  var scratchBytes: Int { (channels + m) * 4 }

  func run(_ c: StepContext) throws(RuntimeError) {
    guard let scratch = c.scratch else { throw RuntimeError("gate score: no scratch") }
    let mean = scratch.assumingMemoryBound(to: Float.self)
    let tmp = mean + channels
    let x = c.input(0, Float.self), y = c.output(0, Float.self)
    w.withUnsafeBufferPointer { wb in
      for img in 0..<images {
        GlobalPoolStep.means(x + img * channels * plane, planes: channels, size: plane, into: mean)
        let s = y + img * m
        // Every output's sum runs over the inputs in order, as one dot product per output would
        // (the same bits), but all outputs advance together: the loop over outputs vectorises,
        // where one output at a time waited on each addition (a 64 x 64 gate per image: 29 of
        // the digits model's 1.3 ms on Zen 4).
        for o in 0..<m { tmp[o] = 0 }
        for i in 0..<channels {
          let col = wb.baseAddress! + i * m, xi = mean[i]
          for o in 0..<m { tmp[o] += col[o] * xi }
        }
        for o in 0..<m {
          let v = tmp[o] + bias[o]
          s[o] = v.isNaN ? v : min(max(v, lo), hi)
          tmp[o] = s[o].isNaN ? .infinity : s[o]
        }
        let t = ChannelSelect.select(tmp, count: m, rank: k - 1)
        for o in 0..<m { s[o] = s[o] * (s[o] >= t ? 1 : 0) }
      }
    }
  }
}
