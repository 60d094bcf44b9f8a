/// Conv: grouped, depthwise, strided, dilated, padded, with an optional fused clamp (the node's
/// epilogue, set by the activation-fusion pass). Weights must be constants.
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
      let profile = SparsityProfile(w, rows: m, cols: g.kh * g.kw)
      c.layer = LayerReport(
        node: c.node.name, op: "Conv(depthwise)", m: m, k: g.kh * g.kw, n: n,
        zeroFraction: profile.zeroFraction, format: "direct",
        kernel: DepthwiseKernel.kernelName, measured: [:], profile: profile)
      do {
        let rows = try DepthwiseConvStep(
          geometry: g, weights: w, bias: bias, multiplier: mg, lo: lo, hi: hi, threads: c.options.threads)
        return try DepthwiseChoice.choose(&c, rows: rows)
      } catch {
        throw c.error(error.message)
      }
    }
    var packed: [PackedMatrix] = []
    var measured: [String: Double] = [:]
    var cached = false
    let unfold: Im2col?
    do { unfold = g.isPointwise ? nil : try Im2col(g.kernelShape()) } catch { throw c.error(error.message) }
    // Images run one by one unless a batch of small ones runs as one multiply (shouldBatch):
    // then candidates are timed on the image's window (the copy it saves counts).
    let imageByImage = g.n == 1 || g.ho * g.wo >= 1024
    for gi in 0..<groups {
      let slice = Array(w[(gi * mg * kg)..<((gi + 1) * mg * kg)])
      let chosen = try FormatChooser.choose(
        slice, rows: mg, cols: kg, n: n, kPerChannel: g.kh * g.kw, options: c.options,
        window: imageByImage ? unfold : nil, windowChannels: cg)
      packed.append(chosen.matrix)
      if gi == 0 { (measured, cached) = (chosen.measured, chosen.cached) }
    }
    let profile = SparsityProfile(w, rows: m, cols: kg, kPerChannel: g.kh * g.kw)
    c.layer = LayerReport(
      node: c.node.name, op: groups > 1 ? "Conv(groups=\(groups))" : "Conv", m: m, k: kg, n: n,
      zeroFraction: profile.zeroFraction, format: packed[0].format.description,
      kernel: packed[0].kernelName, measured: measured, measuredFromCache: cached, profile: profile)
    // A convolution that may skip channels (groups = 1) sizes its workspace for active lists.
    let gateable = groups == 1
    let ws = packed.map { SpMMRunner.workspaceBytes($0, n: n, activeRows: gateable, activeChannels: gateable) }.max() ?? 0
    var step = ConvStep(
      geometry: g, groups: groups, packed: packed, bias: bias, lo: lo, hi: hi, im2col: unfold,
      colBytes: g.isPointwise ? 0 : kg * n * 4, workspaceBytes: ws)
    if ConvStep.shouldBatch(g, groups: groups, packed: packed, unfolds: unfold != nil) {
      step.batched = true
      step.batchWorkspaceBytes = packed.map { SpMMRunner.workspaceBytes($0, n: g.n * n) }.max() ?? 0
    }
    if groups == 1, !g.isPointwise, case .auto = c.options.format, c.options.convAlgorithm != .im2col {
      return try DirectConvChoice.choose(&c, im2col: step, weights: w, profile: profile)
    }
    return step
  }

  /// The clamp a fusion pass folded into this node, or none.
  static func fusedClamp(_ c: BuildContext) throws(ModelError) -> (Float, Float) {
    guard c.node.epilogue.affine == nil, c.node.epilogue.learnedGate == nil, c.node.epilogue.bias == nil,
      c.node.epilogue.gelu == nil
    else {
      throw c.error("this epilogue is not supported here")
    }
    return c.node.epilogue.bounds
  }
}

/// Depthwise (one input channel per group, any channel multiplier): the C depthwise kernels
/// (Kernels/conv), one image at a time, channels split across threads (with fewer channels than
/// threads, a batch's images one per thread): the row kernels, or
/// (multiplier 1, where timing says so: `lanes`) channels in the vector lanes.
struct DepthwiseConvStep: Step {
  let geometry: WindowGeometry
  let kernel: DepthwiseKernel
  let lanes: DepthwiseLanesKernel?
  let weights: [Float]
  let bias: [Float]?
  let lo: Float, hi: Float
  let threads: Int
  var scratchBytes: Int { lanes?.workspaceBytes(threads: threads) ?? kernel.workspaceBytes(threads: threads) }

  init(
    geometry g: WindowGeometry, weights: [Float], bias: [Float]?, multiplier: Int, lo: Float, hi: Float, threads: Int,
    lanes useLanes: Bool = false
  ) throws(KernelError) {
    kernel = try DepthwiseKernel(g.kernelShape(multiplier: multiplier))
    lanes = useLanes ? try DepthwiseLanesKernel(g.kernelShape(multiplier: multiplier), weights: weights, bias: bias) : nil
    (geometry, self.weights, self.bias, self.lo, self.hi, self.threads) = (g, weights, bias, lo, hi, threads)
  }

  func run(_ c: StepContext) throws(RuntimeError) {
    let g = geometry
    let x = c.input(0, Float.self), y = c.output(0, Float.self)
    guard let ws = c.scratch else { throw RuntimeError("depthwise convolution: no workspace") }
    let inImage = g.c * g.h * g.w, outImage = g.c * kernel.shape.multiplier * g.ho * g.wo
    do {
      if let lanes {
        for img in 0..<g.n {
          try lanes.run(x: x + img * inImage, lo: lo, hi: hi, y: y + img * outImage, workspace: ws, threads: threads)
        }
        return
      }
      try weights.withUnsafeBufferPointer { (w) throws(KernelError) in
        try bias.withOptionalPointer { (b) throws(KernelError) in
          // Fewer input channels than threads (a stem's one-channel plane with a multiplier):
          // the channel split leaves threads idle, so a batch runs its images at once instead, one
          // thread and one workspace slot each (the digits model's stem at batch 8, 2 threads).
          if threads > 1, g.n > 1, g.c < threads {
            let slot = kernel.workspaceBytes(threads: 1)
            try TileRunner.forEachItem(g.n, workers: threads) { (img, worker) throws(KernelError) in
              try kernel.run(
                x: x + img * inImage, w: w.baseAddress!, bias: b, lo: lo, hi: hi, y: y + img * outImage,
                workspace: ws + worker * slot, threads: 1)
            }
            return
          }
          for img in 0..<g.n {
            try kernel.run(
              x: x + img * inImage, w: w.baseAddress!, bias: b, lo: lo, hi: hi, y: y + img * outImage, workspace: ws,
              threads: threads)
          }
        }
      }
    } catch {
      throw RuntimeError(error.message)
    }
  }
}

/// Depthwise convolutions (multiplier 1): the row kernels or channels in the vector lanes,
/// whichever measures faster at the layer's shape (interleaved, as DirectConvChoice times), the
/// decision cached like format timings. The row kernels fill few lanes on narrow maps and pay a
/// padded copy per channel: MobileNetV2's 7x7 layers ran 3x ONNX Runtime's time on them (Zen 5).
enum DepthwiseChoice {
  static func choose(_ c: inout BuildContext, rows: DepthwiseConvStep) throws(KernelError) -> DepthwiseConvStep {
    let g = rows.geometry
    guard rows.kernel.shape.multiplier == 1, case .auto = c.options.format,
      let lanes = try? DepthwiseConvStep(
        geometry: g, weights: rows.weights, bias: rows.bias, multiplier: 1, lo: rows.lo, hi: rows.hi,
        threads: rows.threads, lanes: true)
    else { return rows }
    let threads = c.options.threads
    let key = c.options.formatCache.map { _ in
      "dwcv|\(g.c)x\(g.h)x\(g.w) k\(g.kh)x\(g.kw) s\(g.sh),\(g.sw) d\(g.dh),\(g.dw) p\(g.padTop),\(g.padLeft) o\(g.ho)x\(g.wo) n\(g.n)|"
        + FormatCache.key(
          weights: rows.weights, rows: g.c, cols: g.kh * g.kw, n: g.ho * g.wo, kPerChannel: g.kh * g.kw, candidates: [],
          threads: threads)
    }
    var measured: [String: Double]
    var cached = false
    if let key, let hit = c.options.formatCache?.lookup(key) {
      measured = hit.measured
      cached = true
    } else {
      let times = DirectConvChoice.time([rows, lanes], geometry: g, m: g.c, threads: threads)
      measured = ["direct": times[0] ?? .infinity, "direct-lanes": times[1] ?? .infinity]
      if let key {
        let best = measured.min { $0.value < $1.value }!.key
        c.options.formatCache?.store(key, FormatCache.Entry(format: best, measured: measured))
      }
    }
    let useLanes = (measured["direct-lanes"] ?? .infinity) < (measured["direct"] ?? .infinity)
    if var layer = c.layer {
      layer.measured = measured
      layer.measuredFromCache = cached
      if useLanes {
        layer.format = "direct-lanes"
        layer.kernel = DepthwiseLanesKernel.kernelName
      }
      c.layer = layer
    }
    return useLanes ? lanes : rows
  }
}
