/// Integer products: MatMulInteger and ConvInteger (int32 out), QLinearMatMul and QLinearConv
/// (requantized out). Plain loops with int32 accumulation (wrapping, as the hardware's), the
/// reference the int8 kernels of issue 19 will be tested against.

/// A zero point or scale read per index (one value, or one per row/column/channel).
@inline(__always)
private func perIndex<T>(_ p: UnsafePointer<T>, _ count: Int, _ i: Int) -> T { count == 1 ? p[0] : p[i] }

/// The element count of optional input `i` that must hold 1 or `n` values (per tensor or per
/// row/column/channel), 0 when absent.
private func perCount(_ c: BuildContext, _ i: Int, _ what: String, _ n: Int, dtype: DType? = nil) throws(ModelError)
  -> Int
{
  guard c.hasInput(i) else { return 0 }
  let t = try c.input(i)
  if let dtype, t.dtype != dtype { throw c.error("\(what) (input \(i)) is \(t.dtype), expected \(dtype)") }
  guard t.shape.count <= 1, t.count == 1 || t.count == n else {
    throw c.error("\(what) (input \(i)) has shape \(t.shape): expected one value or \(n)")
  }
  return t.count
}

private func checkInt8(_ c: BuildContext, _ t: TensorType, _ what: String) throws(ModelError) {
  guard t.dtype == .int8 || t.dtype == .uint8 else { throw c.error("\(what) must be int8 or uint8, got \(t.dtype)") }
}

/// numpy-style MatMul shapes for two integer operands.
struct IntMatMulShape: Sendable {
  let m: Int, k: Int, n: Int
  let aOffsets: [Int], bOffsets: [Int]
  let outShape: [Int]

  init(_ c: BuildContext, a: TensorType, b: TensorType) throws(ModelError) {
    guard !a.shape.isEmpty, !b.shape.isEmpty else { throw c.error("operands must have rank >= 1, got \(a) and \(b)") }
    let aShape = a.shape.count == 1 ? [1] + a.shape : a.shape
    let bShape = b.shape.count == 1 ? b.shape + [1] : b.shape
    (m, k) = (aShape[aShape.count - 2], aShape[aShape.count - 1])
    n = bShape[bShape.count - 1]
    guard bShape[bShape.count - 2] == k else { throw c.error("inner sizes differ: A \(a.shape), B \(b.shape)") }
    let aBatch = Array(aShape.dropLast(2)), bBatch = Array(bShape.dropLast(2))
    guard let batch = broadcastShapes(aBatch, bBatch) else {
      throw c.error("batch dimensions \(aBatch) and \(bBatch) do not broadcast")
    }
    let ai = BroadcastIndex(from: aBatch, to: batch), bi = BroadcastIndex(from: bBatch, to: batch)
    let total = batch.reduce(1, *)
    let (m, k, n) = (m, k, n)
    aOffsets = (0..<total).map { ai.source($0) * m * k }
    bOffsets = (0..<total).map { bi.source($0) * k * n }
    var out = batch + [m, n]
    if a.shape.count == 1 { out.remove(at: out.count - 2) }
    if b.shape.count == 1 { out.removeLast() }
    outShape = out
  }

  /// Calls `emit(flat output index, row, column, accumulator)` for every output element.
  @inline(__always)
  func run(
    a: UnsafeRawPointer, aType: DType, aZero: (Int) -> Int32, b: UnsafeRawPointer, bType: DType,
    bZero: (Int) -> Int32, emit: (Int, Int, Int, Int32) -> Void
  ) {
    for (t, (ao, bo)) in zip(aOffsets, bOffsets).enumerated() {
      for r in 0..<m {
        let za = aZero(r)
        for col in 0..<n {
          let zb = bZero(col)
          var acc: Int32 = 0
          for j in 0..<k {
            acc &+= (quantValue(a, aType, ao + r * k + j) &- za) &* (quantValue(b, bType, bo + j * n + col) &- zb)
          }
          emit((t * m + r) * n + col, r, col, acc)
        }
      }
    }
  }
}

/// MatMulInteger (opset 10): int32 (A - a_zero_point) · (B - b_zero_point); a_zero_point per
/// tensor or per row of A, b_zero_point per tensor or per column of B.
enum MatMulIntegerOp: OpBuilder {
  static let opTypes = ["MatMulInteger"]

  static func build(_ c: inout BuildContext) throws(ModelError) -> any Step {
    let a = try c.input(0), b = try c.input(1)
    try checkInt8(c, a, "A")
    try checkInt8(c, b, "B")
    let s = try IntMatMulShape(c, a: a, b: b)
    let za = try perCount(c, 2, "a_zero_point", s.m, dtype: a.dtype)
    let zb = try perCount(c, 3, "b_zero_point", s.n, dtype: b.dtype)
    try c.setOutputs([TensorType(.int32, s.outShape)])
    return MatMulIntegerStep(shape: s, aType: a.dtype, bType: b.dtype, aZeros: za, bZeros: zb)
  }
}

struct MatMulIntegerStep: Step {
  let shape: IntMatMulShape
  let aType: DType, bType: DType
  let aZeros: Int, bZeros: Int

  func run(_ c: StepContext) throws(RuntimeError) {
    let za: UnsafeRawPointer? = aZeros > 0 ? UnsafeRawPointer(c.input(2, UInt8.self)) : nil
    let zb: UnsafeRawPointer? = bZeros > 0 ? UnsafeRawPointer(c.input(3, UInt8.self)) : nil
    let y = c.output(0, Int32.self)
    let (na, nb, at, bt) = (aZeros, bZeros, aType, bType)
    shape.run(
      a: UnsafeRawPointer(c.input(0, UInt8.self)), aType: aType,
      aZero: { r in za.map { quantValue($0, at, na == 1 ? 0 : r) } ?? 0 },
      b: UnsafeRawPointer(c.input(1, UInt8.self)), bType: bType,
      bZero: { j in zb.map { quantValue($0, bt, nb == 1 ? 0 : j) } ?? 0 },
      emit: { i, _, _, acc in y[i] = acc })
  }
}

/// QLinearMatMul (opsets 10, 21): y = saturate(round(acc · a_scale · b_scale / y_scale) +
/// y_zero_point) over acc = (a - a_zero_point) · (b - b_zero_point); a's scale and zero point per
/// tensor or per row, b's per tensor or per column.
enum QLinearMatMulOp: OpBuilder {
  static let opTypes = ["QLinearMatMul"]

  static func build(_ c: inout BuildContext) throws(ModelError) -> any Step {
    if c.node.epilogue.dequantizedOutput {
      let a = try c.input(0), b = try c.input(3)
      let s = try IntMatMulShape(c, a: a, b: b)
      try checkScales(c, [1, 4])
      try c.setOutputs([TensorType(.float32, s.outShape)])
      guard let step = try QLinearMatMulKernelStep.build(&c, shape: s, a: a) else {
        throw c.error("a dequantized output needs constant int8 weights, scales and zero points")
      }
      return step
    }
    for i in 1...7 where !c.hasInput(i) { throw c.error("input \(i) is required") }
    let a = try c.input(0), b = try c.input(3), yz = try c.input(7)
    try checkInt8(c, a, "a")
    try checkInt8(c, b, "b")
    try checkInt8(c, yz, "y_zero_point")
    let s = try IntMatMulShape(c, a: a, b: b)
    let counts = [
      try perCount(c, 1, "a_scale", s.m, dtype: .float32), try perCount(c, 2, "a_zero_point", s.m, dtype: a.dtype),
      try perCount(c, 4, "b_scale", s.n, dtype: .float32), try perCount(c, 5, "b_zero_point", s.n, dtype: b.dtype),
      try perCount(c, 6, "y_scale", 1, dtype: .float32), try perCount(c, 7, "y_zero_point", 1),
    ]
    try checkScales(c, [1, 4, 6])
    try c.setOutputs([TensorType(yz.dtype, s.outShape)])
    if let step = try QLinearMatMulKernelStep.build(&c, shape: s, a: a) { return step }
    // Input 8, an int32 bias per column, is Sparrow's own (FuseQDQ writes it with constant
    // parameters, which the kernels take).
    if c.hasInput(8) || c.node.epilogue.clamp != nil {
      throw c.error("a fused bias or activation needs constant int8 weights, scales and zero points")
    }
    return QLinearMatMulStep(shape: s, aType: a.dtype, bType: b.dtype, yType: yz.dtype, counts: counts)
  }
}

struct QLinearMatMulStep: Step {
  let shape: IntMatMulShape
  let aType: DType, bType: DType, yType: DType
  /// Values of a_scale, a_zero_point, b_scale, b_zero_point, y_scale, y_zero_point.
  let counts: [Int]

  func run(_ c: StepContext) throws(RuntimeError) {
    let aS = c.input(1, Float.self), bS = c.input(4, Float.self), yS = c.input(6, Float.self)[0]
    let za = UnsafeRawPointer(c.input(2, UInt8.self)), zb = UnsafeRawPointer(c.input(5, UInt8.self))
    let yz = quantValue(UnsafeRawPointer(c.input(7, UInt8.self)), yType, 0)
    let y = UnsafeMutableRawPointer(c.output(0, UInt8.self))
    let (at, bt, yt, n) = (aType, bType, yType, counts)
    shape.run(
      a: UnsafeRawPointer(c.input(0, UInt8.self)), aType: at, aZero: { r in quantValue(za, at, n[1] == 1 ? 0 : r) },
      b: UnsafeRawPointer(c.input(3, UInt8.self)), bType: bt, bZero: { j in quantValue(zb, bt, n[3] == 1 ? 0 : j) },
      emit: { i, r, col, acc in
        let scale = perIndex(aS, n[0], r) * perIndex(bS, n[2], col) / yS
        storeQuantized(Float(acc) * scale, zero: yz, y, yt, i)
      })
  }
}

/// The geometry of an integer convolution: Conv's attributes over NCHW, with groups.
struct IntConvShape: Sendable {
  let g: WindowGeometry
  let m: Int, group: Int

  init(_ c: BuildContext, x: TensorType, w: TensorType) throws(ModelError) {
    guard w.shape.count == 4 else { throw c.error("only 2-D convolutions are supported, weight \(w.shape)") }
    g = try WindowGeometry(c, input: x, kernel: Array(w.shape[2...]))
    m = w.shape[0]
    group = try c.int("group", 1)
    guard group >= 1, g.c % group == 0, m % group == 0, w.shape[1] == g.c / group else {
      throw c.error("weight \(w.shape) does not fit \(g.c) input channels in \(group) groups")
    }
    guard w.shape[2] == g.kh, w.shape[3] == g.kw else {
      throw c.error("kernel_shape \(g.kh)x\(g.kw) differs from the weight's \(w.shape[2])x\(w.shape[3])")
    }
  }

  var outShape: [Int] { [g.n, m, g.ho, g.wo] }

  /// Calls `emit(flat output index, output channel, accumulator)` for every output element.
  @inline(__always)
  func run(
    x: UnsafeRawPointer, xType: DType, xZero: Int32, w: UnsafeRawPointer, wType: DType, wZero: (Int) -> Int32,
    emit: (Int, Int, Int32) -> Void
  ) {
    let cg = g.c / group, mg = m / group
    for img in 0..<g.n {
      for oc in 0..<m {
        let zw = wZero(oc), c0 = (oc / mg) * cg
        for oy in 0..<g.ho {
          for ox in 0..<g.wo {
            var acc: Int32 = 0
            for ic in 0..<cg {
              for ky in 0..<g.kh {
                let iy = oy * g.sh - g.padTop + ky * g.dh
                guard iy >= 0, iy < g.h else { continue }
                for kx in 0..<g.kw {
                  let ix = ox * g.sw - g.padLeft + kx * g.dw
                  guard ix >= 0, ix < g.w else { continue }
                  let xv = quantValue(x, xType, ((img * g.c + c0 + ic) * g.h + iy) * g.w + ix) &- xZero
                  let wv = quantValue(w, wType, ((oc * cg + ic) * g.kh + ky) * g.kw + kx) &- zw
                  acc &+= xv &* wv
                }
              }
            }
            emit(((img * m + oc) * g.ho + oy) * g.wo + ox, oc, acc)
          }
        }
      }
    }
  }
}

/// ConvInteger (opset 10): int32 convolution of (x - x_zero_point) by (w - w_zero_point); x's
/// zero point per tensor, w's per tensor or per output channel.
enum ConvIntegerOp: OpBuilder {
  static let opTypes = ["ConvInteger"]

  static func build(_ c: inout BuildContext) throws(ModelError) -> any Step {
    let x = try c.input(0), w = try c.input(1)
    try checkInt8(c, x, "x")
    try checkInt8(c, w, "w")
    let s = try IntConvShape(c, x: x, w: w)
    let zx = try perCount(c, 2, "x_zero_point", 1, dtype: x.dtype)
    let zw = try perCount(c, 3, "w_zero_point", s.m, dtype: w.dtype)
    try c.setOutputs([TensorType(.int32, s.outShape)])
    return ConvIntegerStep(shape: s, xType: x.dtype, wType: w.dtype, xZeros: zx, wZeros: zw)
  }
}

struct ConvIntegerStep: Step {
  let shape: IntConvShape
  let xType: DType, wType: DType
  let xZeros: Int, wZeros: Int

  func run(_ c: StepContext) throws(RuntimeError) {
    let zx = xZeros > 0 ? quantValue(UnsafeRawPointer(c.input(2, UInt8.self)), xType, 0) : 0
    let zw: UnsafeRawPointer? = wZeros > 0 ? UnsafeRawPointer(c.input(3, UInt8.self)) : nil
    let y = c.output(0, Int32.self)
    let (wt, nw) = (wType, wZeros)
    shape.run(
      x: UnsafeRawPointer(c.input(0, UInt8.self)), xType: xType, xZero: zx, w: UnsafeRawPointer(c.input(1, UInt8.self)),
      wType: wType, wZero: { oc in zw.map { quantValue($0, wt, nw == 1 ? 0 : oc) } ?? 0 },
      emit: { i, _, acc in y[i] = acc }
    )
  }
}

/// QLinearConv (opset 10): y = saturate(round((acc + B) · x_scale · w_scale / y_scale) +
/// y_zero_point), acc the integer convolution of (x - x_zero_point) by (w - w_zero_point), B an
/// optional int32 bias; w's scale and zero point per tensor or per output channel.
enum QLinearConvOp: OpBuilder {
  static let opTypes = ["QLinearConv"]

  static func build(_ c: inout BuildContext) throws(ModelError) -> any Step {
    if c.node.epilogue.dequantizedOutput {
      let s = try IntConvShape(c, x: try c.input(0), w: try c.input(3))
      try checkScales(c, [1, 4])
      try c.setOutputs([TensorType(.float32, s.outShape)])
      guard let step = try QLinearConvKernelStep.build(&c, shape: s) else {
        throw c.error("a dequantized output needs constant int8 weights, scales and zero points")
      }
      return step
    }
    for i in 1...7 where !c.hasInput(i) { throw c.error("input \(i) is required") }
    let x = try c.input(0), w = try c.input(3), yz = try c.input(7)
    try checkInt8(c, x, "x")
    try checkInt8(c, w, "w")
    try checkInt8(c, yz, "y_zero_point")
    let s = try IntConvShape(c, x: x, w: w)
    let counts = [
      try perCount(c, 1, "x_scale", 1, dtype: .float32), try perCount(c, 2, "x_zero_point", 1, dtype: x.dtype),
      try perCount(c, 4, "w_scale", s.m, dtype: .float32), try perCount(c, 5, "w_zero_point", s.m, dtype: w.dtype),
      try perCount(c, 6, "y_scale", 1, dtype: .float32), try perCount(c, 7, "y_zero_point", 1),
      try perCount(c, 8, "B", s.m, dtype: .int32),
    ]
    if c.hasInput(8), counts[6] != s.m { throw c.error("B (input 8) must hold one int32 per output channel (\(s.m))") }
    try checkScales(c, [1, 4, 6])
    try c.setOutputs([TensorType(yz.dtype, s.outShape)])
    if let step = try QLinearConvKernelStep.build(&c, shape: s) { return step }
    guard c.node.epilogue.clamp == nil else {
      throw c.error("a fused activation needs constant int8 weights and scales")
    }
    return QLinearConvStep(shape: s, xType: x.dtype, wType: w.dtype, yType: yz.dtype, counts: counts)
  }
}

struct QLinearConvStep: Step {
  let shape: IntConvShape
  let xType: DType, wType: DType, yType: DType
  /// Values of x_scale, x_zero_point, w_scale, w_zero_point, y_scale, y_zero_point, B (0: none).
  let counts: [Int]

  func run(_ c: StepContext) throws(RuntimeError) {
    let xS = c.input(1, Float.self)[0], wS = c.input(4, Float.self), yS = c.input(6, Float.self)[0]
    let zx = quantValue(UnsafeRawPointer(c.input(2, UInt8.self)), xType, 0)
    let zw = UnsafeRawPointer(c.input(5, UInt8.self))
    let yz = quantValue(UnsafeRawPointer(c.input(7, UInt8.self)), yType, 0)
    let bias: UnsafePointer<Int32>? = counts[6] > 0 ? c.input(8, Int32.self) : nil
    let y = UnsafeMutableRawPointer(c.output(0, UInt8.self))
    let (wt, yt, n) = (wType, yType, counts)
    shape.run(
      x: UnsafeRawPointer(c.input(0, UInt8.self)), xType: xType, xZero: zx, w: UnsafeRawPointer(c.input(3, UInt8.self)),
      wType: wType, wZero: { oc in quantValue(zw, wt, n[3] == 1 ? 0 : oc) },
      emit: { i, oc, acc in
        let total = acc &+ (bias.map { $0[oc] } ?? 0)
        storeQuantized(Float(total) * (xS * perIndex(wS, n[2], oc) / yS), zero: yz, y, yt, i)
      })
  }
}
