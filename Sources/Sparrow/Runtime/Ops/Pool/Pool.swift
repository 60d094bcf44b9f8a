internal import SparrowKernels

/// MaxPool, AveragePool, GlobalAveragePool and GlobalMaxPool over NCHW float32 data; MaxPool
/// also over int8/uint8 (ONNX allows both; Passes/FuseQDQMaxPool.swift moves a QDQ MaxPool there).

/// Along one spatial axis, for each output position: where its window starts in the input and
/// which of its taps land inside the input (and inside input + declared pads, which is what
/// `count_include_pad` counts). Computed once at plan time so the loops carry no bounds tests.
struct AxisTaps: Sendable, Equatable {
  /// Input index of tap 0 (negative inside the leading pad).
  var start: [Int] = []
  /// Taps [lo, hi) fall inside the input.
  var lo: [Int] = []
  var hi: [Int] = []
  /// Taps inside [-padBefore, size + padAfter).
  var padded: [Int] = []

  init(outputs: Int, size: Int, kernel: Int, stride: Int, dilation: Int, padBefore: Int, padAfter: Int) {
    func firstTap(atLeast bound: Int, from s: Int) -> Int {
      s >= bound ? 0 : (bound - s + dilation - 1) / dilation
    }
    func endTap(below bound: Int, from s: Int) -> Int {
      s >= bound ? 0 : min(kernel, (bound - 1 - s) / dilation + 1)
    }
    for o in 0..<outputs {
      let s = o * stride - padBefore
      let l = firstTap(atLeast: 0, from: s)
      start.append(s)
      lo.append(min(l, kernel))
      hi.append(max(endTap(below: size, from: s), min(l, kernel)))
      let pl = firstTap(atLeast: -padBefore, from: s)
      padded.append(max(0, endTap(below: size + padAfter, from: s) - pl))
    }
  }
}

/// The window of a 2-D pool: geometry plus per-axis tap tables.
struct PoolWindow: Sendable {
  let g: WindowGeometry
  let rows: AxisTaps
  let cols: AxisTaps
  /// For each kernel column kx: output columns [lo, hi) whose tap kx lands inside the input.
  /// The loops run over output columns per tap, which vectorises better than per window.
  let tapColumns: [(lo: Int, hi: Int)]

  /// The element type (input and output).
  let dtype: DType

  init(_ c: BuildContext, input: TensorType, ceilMode: Bool, types: [DType] = [.float32]) throws(ModelError) {
    guard types.contains(input.dtype) else {
      throw c.error("input must be \(types.map { "\($0)" }.joined(separator: " or ")), got \(input.dtype)")
    }
    dtype = input.dtype
    g = try WindowGeometry(c, input: input, kernel: nil, ceilMode: ceilMode)
    // As ONNX Runtime: a pad as wide as the window would give windows with no input at all.
    guard g.padTop < g.kh, g.padBottom < g.kh, g.padLeft < g.kw, g.padRight < g.kw else {
      throw c.error(
        "pads [\(g.padTop), \(g.padLeft), \(g.padBottom), \(g.padRight)] must be smaller than the kernel \(g.kh)x\(g.kw)"
      )
    }
    rows = AxisTaps(
      outputs: g.ho, size: g.h, kernel: g.kh, stride: g.sh, dilation: g.dh, padBefore: g.padTop, padAfter: g.padBottom)
    cols = AxisTaps(
      outputs: g.wo, size: g.w, kernel: g.kw, stride: g.sw, dilation: g.dw, padBefore: g.padLeft, padAfter: g.padRight)
    var ranges: [(lo: Int, hi: Int)] = []
    for kx in 0..<g.kw {
      let off = kx * g.dw - g.padLeft
      let lo = off >= 0 ? 0 : (-off + g.sw - 1) / g.sw
      let hi = off >= g.w ? 0 : min(g.wo, (g.w - 1 - off) / g.sw + 1)
      ranges.append((lo, max(lo, hi)))
    }
    tapColumns = ranges
  }

  /// Applies `body(out, in, count, inStride)` to every (output row, in-input tap) pair of one
  /// plane: `out[i]` meets `in[i * inStride]` for i in 0..<count.
  @inline(__always)
  func forEachTap(
    plane: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, oy: Int,
    _ body: (UnsafeMutablePointer<Float>, UnsafePointer<Float>, Int) -> Void
  ) {
    let o = out + oy * g.wo
    for ky in rows.lo[oy]..<rows.hi[oy] {
      let row = plane + (rows.start[oy] + ky * g.dh) * g.w
      for kx in 0..<g.kw {
        let (lo, hi) = tapColumns[kx]
        if lo < hi { body(o + lo, row + (lo * g.sw + kx * g.dw - g.padLeft), hi - lo) }
      }
    }
  }

  var outputType: TensorType { TensorType(dtype, [g.n, g.c, g.ho, g.wo]) }
}

/// MaxPool (output Y only).
enum MaxPoolOp: OpBuilder {
  static let opTypes = ["MaxPool"]

  static func build(_ c: inout BuildContext) throws(ModelError) -> any Step {
    if c.node.outputs.count > 1, !c.node.outputs[1].isEmpty {
      throw c.error("the Indices output is not supported (only Y); remove output '\(c.node.outputs[1])'")
    }
    let w = try PoolWindow(
      c, input: try c.input(0), ceilMode: try c.int("ceil_mode", 0) != 0, types: [.float32, .uint8, .int8])
    try c.setOutputs([w.outputType])
    if w.dtype != .float32 { return MaxPoolIntStep(window: w, signed: w.dtype == .int8) }
    return MaxPoolStep(window: w)
  }
}

/// MaxPool over uint8/int8: the C kernel over byte planes (Kernels/conv/maxpool.c,
/// sparrow_maxpool_u8; int8 compared with the sign bit flipped), the same window tables as the
/// float step. A window with no input tap, which the pads check excludes, gives the type's minimum.
struct MaxPoolIntStep: Step {
  let window: PoolWindow
  let signed: Bool
  let colLo: [Int], colHi: [Int]

  init(window: PoolWindow, signed: Bool) {
    self.window = window
    self.signed = signed
    colLo = window.tapColumns.map(\.lo)
    colHi = window.tapColumns.map(\.hi)
  }

  /// One input row and the vector passes' slack (they read up to 34 bytes past a window).
  var scratchBytes: Int { window.g.w + 64 }

  func run(_ c: StepContext) throws(RuntimeError) {
    guard let scratch = c.scratch else { throw RuntimeError("MaxPool: no scratch") }
    let g = window.g
    window.withShape(colLo: colLo, colHi: colHi) { shape in
      sparrow_maxpool_u8(
        shape, c.input(0, UInt8.self), c.output(0, UInt8.self), g.n * g.c, scratch.assumingMemoryBound(to: UInt8.self),
        signed ? 0x80 : 0)
    }
  }
}

extension PoolWindow {
  /// The max-pool kernels' view of the window (sparrow_maxpool_shape), valid inside `body`;
  /// `colLo`/`colHi` are `tapColumns` as the kernel reads them.
  func withShape<R>(colLo: [Int], colHi: [Int], _ body: (UnsafePointer<sparrow_maxpool_shape>) -> R) -> R {
    rows.start.withUnsafeBufferPointer { start in
      rows.lo.withUnsafeBufferPointer { lo in
        rows.hi.withUnsafeBufferPointer { hi in
          colLo.withUnsafeBufferPointer { clo in
            colHi.withUnsafeBufferPointer { chi in
              var shape = sparrow_maxpool_shape(
                h: g.h, w: g.w, ho: g.ho, wo: g.wo, dilation_h: g.dh, kw: g.kw, stride_w: g.sw, dilation_w: g.dw,
                pad_left: g.padLeft, row_start: start.baseAddress, row_lo: lo.baseAddress, row_hi: hi.baseAddress,
                col_lo: clo.baseAddress, col_hi: chi.baseAddress)
              return body(&shape)
            }
          }
        }
      }
    }
  }
}

struct MaxPoolStep: Step {
  let window: PoolWindow
  /// The window's per-tap output column ranges, as the kernel reads them.
  let colLo: [Int], colHi: [Int]

  init(window: PoolWindow) {
    self.window = window
    colLo = window.tapColumns.map(\.lo)
    colHi = window.tapColumns.map(\.hi)
  }

  /// One input row's worth of floats (the max over a window's rows, before the max over its
  /// columns), and padding: the stride-2 pass's vectors read one float past the last tap; one
  /// such row per part the planes are split into.
  var scratchBytes: Int { rowFloats * 4 * Self.maxParts }
  private var rowFloats: Int { (window.g.w + 16 + 15) / 16 * 16 }
  /// Planes split into up to this many parts over the run's threads, each part a range of
  /// planes with its own scratch row (ResNet-18's 64 x 112 x 112 pool: 0.48 ms on one thread).
  static let maxParts = 8

  /// Per output row, the max over the window's in-input rows first (contiguous), then over its
  /// columns from that one row (Kernels/conv/maxpool.c: one pass for up to three rows, all taps
  /// of an inside output in one pass; ResNet-18's 64 x 112 x 112 pool 0.33 -> see
  /// Bench/results, on one thread, where these loops in Swift SIMD types took 2.5x a plain C
  /// loop). Taps outside the input are left out, which is ONNX's -inf padding. The folds are
  /// `v > m ? v : m` as the Swift loops had them (a NaN loses every comparison).
  func run(_ c: StepContext) throws(RuntimeError) {
    let g = window.g
    let x = c.input(0, Float.self), y = c.output(0, Float.self)
    guard let scratch = c.scratch?.assumingMemoryBound(to: Float.self) else {
      throw RuntimeError("MaxPool: no scratch")
    }
    let planes = g.n * g.c
    // Split only where a part has at least 64 K input floats (the dispatch costs microseconds).
    let parts = min(c.threads, Self.maxParts, planes, max(1, planes * g.h * g.w / 65536))
    if parts <= 1 { return pool(x, y, scratch, planes: 0..<planes) }
    // On the kernels' thread back end (OpenMP's team, hot from the convolution before it).
    var job = PoolJob(step: self, x: x, y: y, scratch: scratch, planes: planes, parts: parts)
    withUnsafeMutablePointer(to: &job) { j in
      TileRunner.run(
        tasks: parts, threads: c.threads,
        { plan, part in
          let j = plan!.assumingMemoryBound(to: PoolJob.self).pointee
          j.step.pool(
            j.x, j.y, j.scratch + part * j.step.rowFloats,
            planes: (j.planes * part / j.parts)..<(j.planes * (part + 1) / j.parts))
        }, UnsafeMutableRawPointer(j))
    }
  }

  /// One run's split, for the task function.
  private struct PoolJob {
    let step: MaxPoolStep
    let x: UnsafePointer<Float>
    let y: UnsafeMutablePointer<Float>
    let scratch: UnsafeMutablePointer<Float>
    let planes: Int, parts: Int
  }

  /// The planes `planes` of x pooled into y, with `rowMax` (one scratch row) for this caller:
  /// the C kernel (Kernels/conv/maxpool.c) over the window's tap tables.
  private func pool(
    _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ rowMax: UnsafeMutablePointer<Float>,
    planes: Range<Int>
  ) {
    let g = window.g
    window.withShape(colLo: colLo, colHi: colHi) { shape in
      sparrow_maxpool_f32(
        shape, x + planes.lowerBound * g.h * g.w, y + planes.lowerBound * g.ho * g.wo, planes.count, rowMax)
    }
  }

}

/// AveragePool: `count_include_pad` counts the declared pads (not the extra ceil_mode overhang).
enum AveragePoolOp: OpBuilder {
  static let opTypes = ["AveragePool"]

  static func build(_ c: inout BuildContext) throws(ModelError) -> any Step {
    let w = try PoolWindow(c, input: try c.input(0), ceilMode: try c.int("ceil_mode", 0) != 0)
    let includePad = try c.int("count_include_pad", 0)
    guard includePad == 0 || includePad == 1 else {
      throw c.error("count_include_pad must be 0 or 1, got \(includePad)")
    }
    try c.setOutputs([w.outputType])
    // 1 / divisor for each output position, so the loop multiplies.
    var inv = [Float](repeating: 0, count: w.g.ho * w.g.wo)
    for oy in 0..<w.g.ho {
      for ox in 0..<w.g.wo {
        let n =
          includePad == 1
          ? w.rows.padded[oy] * w.cols.padded[ox]
          : (w.rows.hi[oy] - w.rows.lo[oy]) * (w.cols.hi[ox] - w.cols.lo[ox])
        inv[oy * w.g.wo + ox] = n > 0 ? 1 / Float(n) : 0
      }
    }
    return AveragePoolStep(window: w, inverseCounts: inv)
  }
}

struct AveragePoolStep: Step {
  let window: PoolWindow
  let inverseCounts: [Float]

  func run(_ c: StepContext) throws(RuntimeError) {
    let g = window.g
    let x = c.input(0, Float.self), y = c.output(0, Float.self)
    let sw = g.sw
    inverseCounts.withUnsafeBufferPointer { inv in
      for p in 0..<(g.n * g.c) {
        let plane = x + p * g.h * g.w
        let out = y + p * g.ho * g.wo
        for oy in 0..<g.ho {
          let o = out + oy * g.wo
          o.update(repeating: 0, count: g.wo)
          window.forEachTap(plane: plane, out: out, oy: oy) { o, r, n in
            if sw == 1 {
              for i in 0..<n { o[i] += r[i] }
            } else {
              for i in 0..<n { o[i] += r[i * sw] }
            }
          }
          for ox in 0..<g.wo { o[ox] *= inv[oy * g.wo + ox] }
        }
      }
    }
  }
}

/// GlobalAveragePool and GlobalMaxPool: one value per (N, C) plane, spatial dims kept as 1.
enum GlobalPoolOp: OpBuilder {
  static let opTypes = ["GlobalAveragePool", "GlobalMaxPool"]

  static func build(_ c: inout BuildContext) throws(ModelError) -> any Step {
    let x = try c.input(0)
    guard x.dtype == .float32 else { throw c.error("input must be float32, got \(x.dtype)") }
    guard x.shape.count >= 3 else { throw c.error("input must be N x C x spatial dims (rank >= 3), got \(x)") }
    let planes = x.shape[0] * x.shape[1]
    let size = x.count / max(planes, 1)
    guard size > 0 else { throw c.error("input \(x) has empty spatial dims") }
    try c.setOutputs([TensorType(.float32, [x.shape[0], x.shape[1]] + Array(repeating: 1, count: x.shape.count - 2))])
    return GlobalPoolStep(planes: planes, size: size, isMax: c.node.opType == "GlobalMaxPool")
  }
}

struct GlobalPoolStep: Step {
  let planes: Int
  let size: Int
  let isMax: Bool

  func run(_ c: StepContext) throws(RuntimeError) {
    let x = c.input(0, Float.self), y = c.output(0, Float.self)
    for p in 0..<planes {
      let v = x + p * size
      if isMax {
        var m = v[0]
        for i in 1..<size { m = max(m, v[i]) }
        y[p] = m
      } else {
        y[p] = Self.mean(v, size: size)
      }
    }
  }

  /// The mean of `size` values: sixteen partial sums in two 8-lane vectors over whole blocks of
  /// 16, four for the rest (short dependency chains, and less rounding drift on big planes; one
  /// sum per chain of four waited on every addition: the digits model's gates pool 16 x 16
  /// planes). GateScoreStep pools with it too, so that fusing changes no bit.
  @inline(__always) static func mean(_ v: UnsafePointer<Float>, size: Int) -> Float {
    let raw = UnsafeRawPointer(v)
    var a = SIMD8<Float>(), b = SIMD8<Float>()
    var i = 0
    while i + 16 <= size {
      a += raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
      b += raw.loadUnaligned(fromByteOffset: (i + 8) * 4, as: SIMD8<Float>.self)
      i += 16
    }
    var s0: Float = 0, s1: Float = 0, s2: Float = 0, s3: Float = 0
    while i + 4 <= size {
      s0 += v[i]
      s1 += v[i + 1]
      s2 += v[i + 2]
      s3 += v[i + 3]
      i += 4
    }
    while i < size {
      s0 += v[i]
      i += 1
    }
    return ((a + b).sum() + ((s0 + s1) + (s2 + s3))) / Float(size)
  }

  /// Means of `planes` planes of `size` values.
  static func means(_ x: UnsafePointer<Float>, planes: Int, size: Int, into y: UnsafeMutablePointer<Float>) {
    for p in 0..<planes { y[p] = mean(x + p * size, size: size) }
  }
}
