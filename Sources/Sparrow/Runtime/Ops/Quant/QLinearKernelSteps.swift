/// QLinearConv and QLinearMatMul on the int8 GEMM kernels (Kernels/qgemm): taken when the
/// weights, scales and zero points are constants, the weights int8 with zero points 0 (symmetric,
/// as ONNX Runtime's quantizer and `sparrow quantize` write them) and the activations per tensor.
/// Same arithmetic as the plain loops in IntegerLinear.swift (int32 accumulator plus bias, times
/// the float32 scale x_scale · w_scale / y_scale, round half to even, zero point, saturate), so
/// the outputs are equal bit for bit. The QDQ fusion (Passes/FuseQDQ.swift) writes these nodes,
/// with a Relu/Clip as the node's epilogue clamp.

/// The constant parameters of an int8 product, read and checked at plan time.
struct QLinearParams {
  let xScale: Float, xZero: Int32, xSigned: Bool
  let weights: [Int8]
  let wScale: [Float]
  let yScale: Float
  let output: QOutput
  let bias: [Int32]?

  /// Per output channel: x_scale · w_scale / y_scale, in the loops' order.
  var scale: [Float] { wScale.map { xScale * $0 / yScale } }
  /// The activations' zero point in the kernels' uint8 domain.
  var packedZero: Int32 { xSigned ? xZero + 128 : xZero }

  /// nil when the node is not for the kernels (run-time parameters, uint8 or asymmetric weights,
  /// per-row activation scales): the plain loop runs it. Inputs: x 0, x_scale 1, x_zero 2, w 3,
  /// w_scale 4, w_zero 5, y_scale 6, y_zero 7, bias 8; `channels` output channels.
  static func read(_ c: BuildContext, channels: Int, biasInput: Int?) throws(ModelError) -> QLinearParams? {
    guard let xs = c.constant(1), xs.count == 1, let xz = c.constant(2), xz.count == 1, let w = c.constant(3),
      case .int8(let wv) = w.storage, let ws = c.constant(4), ws.count == 1 || ws.count == channels,
      let wz = c.constant(5), wz.int64s.allSatisfy({ $0 == 0 })
    else { return nil }
    let wScale = ws.count == 1 ? Array(repeating: ws.floats[0], count: channels) : ws.floats
    let (lo, hi) = c.node.epilogue.bounds
    let x = try c.input(0)
    var bias: [Int32]? = nil
    if let bi = biasInput, c.hasInput(bi) {
      guard let b = c.constant(bi), case .int32(let bv) = b.storage, bv.count == channels else { return nil }
      bias = bv
    }
    if c.node.epilogue.dequantizedOutput {
      return QLinearParams(
        xScale: xs.floats[0], xZero: Int32(xz.int64s[0]), xSigned: x.dtype == .int8, weights: wv, wScale: wScale,
        yScale: 1, output: .float(lo: lo, hi: hi), bias: bias)
    }
    guard let ys = c.constant(6), ys.count == 1, let yz = c.constant(7), yz.count == 1 else { return nil }
    let yScale = ys.floats[0]
    let yZero = Int32(yz.int64s[0])
    let signed = yz.dtype == .int8
    let (qmin, qmax): (Int32, Int32) = signed ? (-128, 127) : (0, 255)
    // A fused Relu/Clip: clamp then quantize equals quantize then clamp to the bounds' quanta.
    func bound(_ v: Float, _ fallback: Int32) -> Int32 {
      guard v.isFinite else { return fallback }
      let q = (v / yScale).rounded(.toNearestOrEven) + Float(yZero)
      return Int32(min(max(q, Float(qmin)), Float(qmax)))
    }
    return QLinearParams(
      xScale: xs.floats[0], xZero: Int32(xz.int64s[0]), xSigned: x.dtype == .int8, weights: wv, wScale: wScale,
      yScale: yScale,
      output: .quantized(signed: signed, zero: yZero, lo: max(qmin, bound(lo, qmin)), hi: min(qmax, bound(hi, qmax))),
      bias: bias)
  }
}

/// Scales must be positive and finite, whatever path runs the node: a one-line error otherwise.
func checkScales(_ c: BuildContext, _ inputs: [Int]) throws(ModelError) {
  for i in inputs {
    guard let t = c.constant(i) else { continue }
    for v in t.floats where !(v > 0 && v.isFinite) {
      throw c.error("scale (input \(i)) holds \(v): scales must be positive and finite")
    }
  }
}

/// QLinearConv on the int8 kernels: per image and group, the im2col view of the uint8 input
/// packed for the kernels (a 1x1 stride-1 unpadded convolution packs the input as it is; larger
/// kernels with a multiple of 4 channels per group in tap-major K order, the weights' columns
/// permuted to match, a band of output rows at a time; the rest per tap), then the int8 GEMM with
/// the requantize epilogue written straight into the output. Or, where timed faster (or forced by
/// `--conv direct`), the direct int8 convolution on the tap-major planes without the unfolded copy
/// (Kernels/qconv), channels padded to groups of 4 with zero weights.
struct QLinearConvKernelStep: Step {
  let g: WindowGeometry
  let m: Int, group: Int
  var packed: [QPackedLinear]
  let xZero: Int32, signed: Bool
  /// K in tap-major order (QGemm.packConvTapMajorPlanes/Rows; for the direct kernel, each tap's
  /// channels padded to `planeChannels`).
  let tapMajor: Bool
  /// The direct convolution on the tap-major planes (Kernels/qconv; `packed` is packed for it):
  /// no unfolded copy.
  var direct = false

  var kg: Int { g.c / group * g.kh * g.kw }
  /// Tap-major layers pack and multiply `bandRows` output rows at a time, about `bandBytes` of packed
  /// X, so the kernels read a band that was just written (in L2) instead of the whole unfolded
  /// matrix from L3: the 1x4-sparse int8 kernel, which reads X once per row, ran ResNet-18's
  /// 56x56 and 28x28 layers at 90% 17-19% faster so on Zen 4 (L2 1 MiB); the dense one the same
  /// (64 KiB and 128 KiB bands: less gain, 512 KiB: none).
  static let bandBytes = 256 << 10
  var bandRows: Int { Self.bandRows(g, kg: kg, tapMajor: tapMajor) }
  static func bandRows(_ g: WindowGeometry, kg: Int, tapMajor: Bool) -> Int {
    tapMajor ? max(1, min(g.ho, bandBytes / max(1, kg * g.wo))) : g.ho
  }
  /// Packed X (one band), then (tap-major) the packer's work area from a 64-byte boundary.
  var packedBytes: Int { direct ? 0 : (QGemm.packedXBytes(k: kg, n: bandRows * g.wo) + 63) / 64 * 64 }
  /// Bytes of one output element: float32 (dequantized) or int8/uint8.
  var outBytes: Int {
    if case .float = packed[0].output { return 4 }
    return 1
  }
  var scratchBytes: Int { packedBytes + (tapMajor ? QGemm.tapMajorWorkBytes(c: g.c / group, g: g) : 0) }

  /// Whether a convolution of geometry `g` with `cg` channels per group packs in tap-major order.
  /// Not for 1x1 kernels, whose K order is the same either way: strided ones (ResNet's
  /// downsampling) pack 3.5x faster per tap (0.029 -> 0.008 ms at 64 channels, 56x56, stride 2),
  /// as the tap-major planes hold every row and column phase of the input.
  static func packsTapMajor(_ g: WindowGeometry, cg: Int) -> Bool {
    cg % 4 == 0 && !(g.kh == 1 && g.kw == 1)
  }

  /// Channels per group in the direct convolution's planes: rounded up to a multiple of 4 (the
  /// missing ones hold the pad value and have zero weights).
  var planeChannels: Int { (g.c / group + 3) / 4 * 4 }

  func run(_ c: StepContext) throws(RuntimeError) {
    let x = UnsafeRawPointer(c.input(0, UInt8.self)), y = UnsafeMutableRawPointer(c.output(0, UInt8.self))
    guard let scratch = c.scratch else { return }
    let cg = g.c / group, mg = m / group, hw = g.h * g.w, n = g.ho * g.wo
    for img in 0..<g.n {
      for gi in 0..<group {
        image(
          x + (img * g.c + gi * cg) * hw, y: y + (img * m + gi * mg) * n * outBytes, group: gi, scratch: scratch,
          threads: c.threads)
      }
    }
  }

  /// One image's group `gi` (its channels at xg) into yg.
  func image(
    _ xg: UnsafeRawPointer, y yg: UnsafeMutableRawPointer, group gi: Int, scratch: UnsafeMutableRawPointer, threads: Int
  ) {
    let cg = g.c / group, hw = g.h * g.w, n = g.ho * g.wo
    let pad = UInt8(truncatingIfNeeded: xZero), packedZero = signed ? xZero + 128 : xZero
    if tapMajor {
      let work = scratch + packedBytes
      QGemm.packConvTapMajorPlanes(xg, c: cg, g: g, pad: pad, signed: signed, work: work)
      if direct {
        packed[gi].runDirect(work: work, c: planeChannels, g: g, xZero: packedZero, y: yg, threads: threads)
        return
      }
      for oy in stride(from: 0, to: g.ho, by: bandRows) {
        let rows = oy..<min(oy + bandRows, g.ho)
        QGemm.packConvTapMajorRows(work: work, c: cg, g: g, rows: rows, into: scratch)
        packed[gi].run(
          packedX: scratch, n: rows.count * g.wo, xZero: packedZero, y: yg + oy * g.wo * outBytes, rowStride: n,
          colStride: 1, threads: threads)
      }
      return
    }
    if g.isPointwise && g.sh == 1 && g.sw == 1 {
      QGemm.packX(xg, k: cg, n: n, kStride: hw, nStride: 1, signed: signed, into: scratch)
    } else {
      QGemm.packConv(xg, c: cg, g: g, pad: pad, signed: signed, into: scratch)
    }
    packed[gi].run(packedX: scratch, n: n, xZero: packedZero, y: yg, rowStride: n, colStride: 1, threads: threads)
  }

  static func build(_ c: inout BuildContext, shape s: IntConvShape) throws(ModelError) -> (any Step)? {
    guard let p = try QLinearParams.read(c, channels: s.m, biasInput: 8), !p.weights.isEmpty else { return nil }
    let cg = s.g.c / s.group, mg = s.m / s.group, kg = cg * s.g.kh * s.g.kw
    let scale = p.scale
    var packed: [QPackedLinear] = []
    var measured: [String: Double] = [:]
    let tapMajor = packsTapMajor(s.g, cg: cg)
    // Formats are timed on the columns of one call: a band of rows where the layer is banded.
    let rowsPerBand = bandRows(s.g, kg: kg, tapMajor: tapMajor), timedColumns = rowsPerBand * s.g.wo
    let weights =
      tapMajor
      ? p.weights.withUnsafeBufferPointer { QGemm.tapMajor($0.baseAddress!, m: s.m, c: cg, taps: s.g.kh * s.g.kw) }
      : p.weights
    weights.withUnsafeBufferPointer { w in
      for gi in 0..<s.group {
        let rows = gi * mg..<(gi + 1) * mg
        let (q, times) = QPackedLinear.chosen(
          weights: w.baseAddress! + gi * mg * kg, m: mg, k: kg, mStride: kg, kStride: 1, scale: Array(scale[rows]),
          bias: p.bias.map { Array($0[rows]) }, output: p.output, n: timedColumns, policy: c.options.format,
          threads: c.options.threads)
        packed.append(q)
        // Timed on one band: the layer's time is the bands' (shown so by `inspect`).
        let bands = Double((s.g.ho + rowsPerBand - 1) / max(1, rowsPerBand))
        if gi == 0 { measured = times.mapValues { $0 * bands } }
      }
    }
    var step = QLinearConvKernelStep(
      g: s.g, m: s.m, group: s.group, packed: packed, xZero: p.xZero, signed: p.xSigned, tapMajor: tapMajor)
    // The direct convolution on the planes: for the tap-major layers, and for k x k ones with
    // fewer or other than a multiple of 4 channels (ResNet's 3-channel stem), their channels
    // padded to groups of 4 with zero weights.
    // Not where the padding would more than double the work (depthwise: 1 channel per group).
    let taps = s.g.kh * s.g.kw
    if taps > 1 && taps <= QGemm.directMaxTaps && (cg + 3) / 4 * 4 <= 2 * cg {
      let algorithm = c.options.convAlgorithm
      let timed = algorithm == .measure && c.options.format == .auto && QGemm.directAutomatic != 0
      if timed || algorithm == .direct || algorithm == .pixel {
        var candidate = QLinearConvKernelStep(
          g: s.g, m: s.m, group: s.group, packed: packed, xZero: p.xZero, signed: p.xSigned, tapMajor: true)
        candidate.direct = true
        let cp = candidate.planeChannels, kp = cp * taps
        let padded = p.weights.withUnsafeBufferPointer {
          QGemm.tapMajor($0.baseAddress!, m: s.m, c: cg, taps: taps, paddedTo: cp)
        }
        candidate.packed = padded.withUnsafeBufferPointer { w in
          (0..<s.group).map { gi in
            QPackedLinear(
              weights: w.baseAddress! + gi * mg * kp, m: mg, k: kp, mStride: kp, kStride: 1,
              scale: Array(scale[gi * mg..<(gi + 1) * mg]), bias: p.bias.map { Array($0[gi * mg..<(gi + 1) * mg]) },
              output: p.output, direct: true)
          }
        }
        if timed {
          // Whole layer, packing included (the other entries: the kernel on one band, scaled).
          let times = Self.time([step, candidate], threads: c.options.threads)
          measured[(step.packed[0].isSparse ? "int8-bsr1x4" : "int8") + " (layer)"] = times[0]
          measured["int8-direct (layer)"] = times[1]
          if (times[1] ?? .infinity) < (times[0] ?? .infinity) { step = candidate }
        } else {
          step = candidate
        }
      }
    }
    let profile = SparsityProfile(p.weights.map { Float($0) }, rows: s.m, cols: kg, kPerChannel: s.g.kh * s.g.kw)
    c.layer = LayerReport(
      node: c.node.name, op: "QLinearConv(int8)", m: s.m, k: kg, n: s.g.ho * s.g.wo, zeroFraction: profile.zeroFraction,
      format: step.direct ? "int8-direct" : packed[0].isSparse ? "int8-bsr1x4" : "int8",
      kernel: step.packed[0].kernelName, measured: measured, profile: profile,
      storedBytes: step.packed.reduce(0) { $0 + $1.storedBytes })
    return step
  }

  /// The fastest run of each step on one random image (group 0 only is timed: the groups are
  /// alike), in milliseconds: the GEMM on unfolded columns against the direct kernel.
  static func time(_ steps: [QLinearConvKernelStep], threads: Int) -> [Double?] {
    let g = steps[0].g
    let cg = g.c / steps[0].group
    let xBytes = cg * g.h * g.w, yBytes = steps[0].packed[0].m * g.ho * g.wo * steps[0].outBytes
    let scratchBytes = steps.map(\.scratchBytes).max() ?? 0
    let x = UnsafeMutableRawPointer.allocate(byteCount: max(1, xBytes), alignment: 64)
    let y = UnsafeMutableRawPointer.allocate(byteCount: max(1, yBytes), alignment: 64)
    let scratch = UnsafeMutableRawPointer.allocate(byteCount: max(64, scratchBytes), alignment: 64)
    defer {
      x.deallocate()
      y.deallocate()
      scratch.deallocate()
    }
    var state: UInt32 = 0x5EED
    for i in 0..<xBytes {
      state = state &* 1_664_525 &+ 1_013_904_223
      x.storeBytes(of: UInt8(truncatingIfNeeded: state >> 24), toByteOffset: i, as: UInt8.self)
    }
    let ops = 2 * Double(steps[0].packed[0].m) * Double(steps[0].kg) * Double(g.ho * g.wo)
    let repeats = Measure.repeats(flops: ops, budget: 3e9, range: 6...20)
    return Measure.fastestInterleaved(candidates: steps.count, repeats: repeats, threadCPUTime: threads == 1) { i in
      steps[i].image(x, y: y, group: 0, scratch: scratch, threads: threads)
      return true
    }
  }
}

/// QLinearMatMul with a constant 2-D int8 B [K, N] on the int8 kernels: W = Bᵀ (per-column
/// scales become per-row), X = Aᵀ read through strides (A's rows are the columns), the output
/// written transposed by the epilogue. Sparrow's fusion may add a 9th input, an int32 bias per
/// column (a Gemm's).
struct QLinearMatMulKernelStep: Step {
  let rows: Int, k: Int, n: Int
  let packed: QPackedLinear
  let xZero: Int32, signed: Bool

  var scratchBytes: Int { QGemm.packedXBytes(k: k, n: rows) }

  func run(_ c: StepContext) throws(RuntimeError) {
    guard let scratch = c.scratch else { return }
    QGemm.packX(
      UnsafeRawPointer(c.input(0, UInt8.self)), k: k, n: rows, kStride: 1, nStride: k, signed: signed, into: scratch)
    packed.run(
      packedX: scratch, n: rows, xZero: signed ? xZero + 128 : xZero,
      y: UnsafeMutableRawPointer(c.output(0, UInt8.self)),
      rowStride: 1, colStride: n, threads: c.threads)
  }

  static func build(_ c: inout BuildContext, shape s: IntMatMulShape, a: TensorType) throws(ModelError) -> (any Step)? {
    guard c.constant(3)?.rank == 2, a.shape.count >= 2 else { return nil }
    guard let p = try QLinearParams.read(c, channels: s.n, biasInput: 8), !p.weights.isEmpty, s.k > 0 else {
      return nil
    }
    let rows = a.count / s.k
    let (packed, measured) = p.weights.withUnsafeBufferPointer { w in
      QPackedLinear.chosen(
        weights: w.baseAddress!, m: s.n, k: s.k, mStride: 1, kStride: s.n, scale: p.scale, bias: p.bias,
        output: p.output, n: rows, policy: c.options.format, threads: c.options.threads)
    }
    let profile = SparsityProfile(p.weights.map { Float($0) }, rows: s.k, cols: s.n)
    c.layer = LayerReport(
      node: c.node.name, op: "QLinearMatMul(int8)", m: s.n, k: s.k, n: rows, zeroFraction: profile.zeroFraction,
      format: packed.isSparse ? "int8-bsr1x4" : "int8", kernel: packed.kernelName, measured: measured,
      profile: profile, storedBytes: packed.storedBytes)
    return QLinearMatMulKernelStep(rows: rows, k: s.k, n: s.n, packed: packed, xZero: p.xZero, signed: p.xSigned)
  }
}
