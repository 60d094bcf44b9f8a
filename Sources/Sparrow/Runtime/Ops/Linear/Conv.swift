/// Conv: grouped, depthwise, strided, dilated, padded, with an optional fused clamp (set by the
/// activation-fusion pass through `sparrow_activation`). Weights must be constants.
enum ConvOp: OpBuilder {
  static let opTypes = ["Conv"]

  static func build(_ c: inout BuildContext) throws(ModelError) -> any Step {
    let x = try c.input(0)
    let wType = try c.input(1)
    guard x.dtype == .float32 else { throw c.error("input must be float32, got \(x.dtype)") }
    guard let weight = c.constant(1), wType.shape.count == 4 else {
      throw c.error("the weight must be a constant 4-D tensor (got \(wType), \(c.constant(1) == nil ? "computed at run time" : "constant"))")
    }
    let g = try WindowGeometry(c, input: x, kernel: [wType.shape[2], wType.shape[3]])
    guard g.kh == wType.shape[2], g.kw == wType.shape[3] else {
      throw c.error("kernel_shape \([g.kh, g.kw]) disagrees with the weight's \(Array(wType.shape[2...]))")
    }
    let groups = try c.int("group", 1)
    let m = wType.shape[0], cg = wType.shape[1]
    guard groups >= 1, g.c % groups == 0, m % groups == 0, cg == g.c / groups else {
      throw c.error("weight \(wType.shape) does not fit input channels \(g.c) in \(groups) groups")
    }
    var bias: [Float]? = nil
    if c.hasInput(2) {
      guard let b = c.constant(2), b.count == m else { throw c.error("the bias must be a constant of \(m) values") }
      bias = b.floats
    }
    let (lo, hi) = try fusedClamp(c)
    try c.setOutputs([TensorType(.float32, [g.n, m, g.ho, g.wo])])
    let w = weight.floats
    let mg = m / groups
    let kg = cg * g.kh * g.kw
    let n = g.ho * g.wo
    if cg == 1 {
      c.layer = LayerReport(
        node: c.node.name, op: "Conv(depthwise)", m: m, k: g.kh * g.kw, n: n,
        zeroFraction: SparsityProfile(w, rows: m, cols: g.kh * g.kw).zeroFraction, format: "direct",
        kernel: "depthwise_direct", measured: [:])
      return DepthwiseConvStep(geometry: g, weights: w, bias: bias, multiplier: mg, lo: lo, hi: hi)
    }
    var packed: [PackedMatrix] = []
    var measured: [String: Double] = [:]
    for gi in 0..<groups {
      let slice = Array(w[(gi * mg * kg)..<((gi + 1) * mg * kg)])
      let chosen = try FormatChooser.choose(
        slice, rows: mg, cols: kg, n: n, kPerChannel: g.kh * g.kw, policy: c.options.format, threads: c.options.threads)
      packed.append(chosen.matrix)
      if gi == 0 { measured = chosen.measured }
    }
    c.layer = LayerReport(
      node: c.node.name, op: groups > 1 ? "Conv(groups=\(groups))" : "Conv", m: m, k: kg, n: n,
      zeroFraction: SparsityProfile(w, rows: m, cols: kg).zeroFraction, format: packed[0].format.description,
      kernel: packed[0].kernelName, measured: measured)
    let ws = packed.map { SpMMRunner.workspaceBytes($0, n: n) }.max() ?? 0
    return ConvStep(
      geometry: g, groups: groups, packed: packed, bias: bias, lo: lo, hi: hi,
      colBytes: g.isPointwise ? 0 : kg * n * 4, workspaceBytes: ws)
  }

  /// The clamp a fusion pass folded into this node, or none.
  static func fusedClamp(_ c: BuildContext) throws(ModelError) -> (Float, Float) {
    guard let r = try c.floats("sparrow_activation") else { return (-.infinity, .infinity) }
    guard r.count == 2, r[0] <= r[1] else { throw c.error("sparrow_activation must be [lo, hi]") }
    return (r[0], r[1])
  }
}

struct ConvStep: Step, @unchecked Sendable {
  let geometry: WindowGeometry
  let groups: Int
  let packed: [PackedMatrix]
  let bias: [Float]?
  let lo: Float, hi: Float
  let colBytes: Int
  let workspaceBytes: Int
  var scratchBytes: Int { (colBytes + 63) / 64 * 64 + workspaceBytes }

  func run(_ c: StepContext) throws(RuntimeError) {
    let g = geometry
    let x = c.input(0, Float.self), y = c.output(0, Float.self)
    let n = g.ho * g.wo
    let cg = g.c / groups
    let mg = packed[0].rows
    let col = c.scratch?.assumingMemoryBound(to: Float.self)
    let ws = c.scratch.map { $0 + (colBytes + 63) / 64 * 64 }
    let m = mg * groups
    do {
      try bias.withOptionalPointer { (b) throws(KernelError) in
        for img in 0..<g.n {
          let xi = x + img * g.c * g.h * g.w
          for gi in 0..<groups {
            let src: UnsafePointer<Float>
            if colBytes == 0 {
              src = xi + gi * cg * g.h * g.w
            } else {
              im2col(xi, g, c0: gi * cg, channels: cg, into: col!)
              src = UnsafePointer(col!)
            }
            try SpMMRunner.run(
              packed[gi], x: src, xStride: n, n: n, y: y + (img * m + gi * mg) * n, yStride: n,
              bias: b.map { $0 + gi * mg }, lo: lo, hi: hi, workspace: workspaceBytes > 0 ? ws : nil,
              workspaceBytes: workspaceBytes, threads: c.threads)
          }
        }
      }
    } catch {
      throw RuntimeError(error.message)
    }
  }
}

/// Depthwise (one input channel per group, any channel multiplier): a direct loop.
struct DepthwiseConvStep: Step {
  let geometry: WindowGeometry
  let weights: [Float]
  let bias: [Float]?
  let multiplier: Int
  let lo: Float, hi: Float

  func run(_ c: StepContext) throws(RuntimeError) {
    let g = geometry
    let x = c.input(0, Float.self), y = c.output(0, Float.self)
    let m = g.c * multiplier
    // Output rows/columns whose whole window lies inside the input need no bounds checks.
    func inside(_ o: Int, _ stride: Int, _ pad: Int, _ k: Int, _ d: Int, _ size: Int) -> Bool {
      o * stride - pad >= 0 && o * stride - pad + (k - 1) * d < size
    }
    let rowInside = (0..<g.ho).map { inside($0, g.sh, g.padTop, g.kh, g.dh, g.h) }
    let colLo = (0..<g.wo).first { inside($0, g.sw, g.padLeft, g.kw, g.dw, g.w) } ?? g.wo
    let colHi = ((0..<g.wo).last { inside($0, g.sw, g.padLeft, g.kw, g.dw, g.w) } ?? -1) + 1
    weights.withUnsafeBufferPointer { w in
      for img in 0..<g.n {
        for oc in 0..<m {
          let plane = x + (img * g.c + oc / multiplier) * g.h * g.w
          let out = y + (img * m + oc) * g.ho * g.wo
          let wk = w.baseAddress! + oc * g.kh * g.kw
          let b = bias?[oc] ?? 0
          for oy in 0..<g.ho {
            let iy0 = oy * g.sh - g.padTop
            var ox = 0
            while ox < g.wo {
              if rowInside[oy] && ox == colLo && colLo < colHi {
                // Interior: unchecked taps.
                for ox2 in colLo..<colHi {
                  let ix0 = ox2 * g.sw - g.padLeft
                  var acc = b
                  for ky in 0..<g.kh {
                    let row = plane + (iy0 + ky * g.dh) * g.w + ix0
                    let wr = wk + ky * g.kw
                    for kx in 0..<g.kw { acc += wr[kx] * row[kx * g.dw] }
                  }
                  out[oy * g.wo + ox2] = min(max(acc, lo), hi)
                }
                ox = colHi
                continue
              }
              var acc = b
              for ky in 0..<g.kh {
                let iy = iy0 + ky * g.dh
                if iy < 0 || iy >= g.h { continue }
                let row = plane + iy * g.w
                for kx in 0..<g.kw {
                  let ix = ox * g.sw - g.padLeft + kx * g.dw
                  if ix >= 0 && ix < g.w { acc += wk[ky * g.kw + kx] * row[ix] }
                }
              }
              out[oy * g.wo + ox] = min(max(acc, lo), hi)
              ox += 1
            }
          }
        }
      }
    }
  }
}
