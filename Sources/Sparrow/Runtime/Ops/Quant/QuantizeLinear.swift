/// Quantized models in ONNX's own forms (issue 19, import): QuantizeLinear, DequantizeLinear and
/// DynamicQuantizeLinear here; the integer products (MatMulInteger, ConvInteger, QLinearMatMul,
/// QLinearConv) in IntegerLinear.swift. Each runs as ONNX Runtime computes it (float32 scaling,
/// round half to even, saturation), so a quantized model gives ORT's integers. Not fused into int8
/// kernels yet: a QDQ model runs its Conv/MatMul in float32 between the pairs.
let quantOps: [any OpBuilder.Type] = [
  QuantizeLinearOp.self, DequantizeLinearOp.self, DynamicQuantizeLinearOp.self, MatMulIntegerOp.self,
  QLinearMatMulOp.self, ConvIntegerOp.self, QLinearConvOp.self, QLinearAddOp.self,
]

/// How a scale (and zero point) applies to a tensor: one value, or one per index of `axis`.
struct QuantAxis: Sendable {
  /// Values of the scale: 1 (per tensor) or the size of the axis.
  let channels: Int
  /// Elements after the axis (the channel of flat index i is (i / inner) % channels).
  let inner: Int

  /// Reads opset 13's `axis` for a per-axis scale of shape [x.shape[axis]]; a scalar or
  /// one-element scale is per tensor.
  init(_ c: BuildContext, x: TensorType, scale: TensorType, scaleInput: Int) throws(ModelError) {
    if scale.shape.reduce(1, *) == 1 && scale.shape.count <= 1 {
      (channels, inner) = (1, 1)
      return
    }
    guard c.opset >= 13 else {
      throw c.error(
        "a per-axis scale (input \(scaleInput) of shape \(scale.shape)) needs opset 13, the model has \(c.opset)")
    }
    guard scale.shape.count == 1 else {
      throw c.error("scale (input \(scaleInput)) must be a scalar or 1-D, got shape \(scale.shape)")
    }
    let axis = try c.axis(try c.int("axis", 1), rank: x.shape.count)
    guard scale.shape[0] == x.shape[axis] else {
      throw c.error("scale has \(scale.shape[0]) values for axis \(axis) of size \(x.shape[axis])")
    }
    channels = x.shape[axis]
    inner = x.shape[(axis + 1)...].reduce(1, *)
  }

  @inline(__always) func channel(_ i: Int) -> Int { channels == 1 ? 0 : (i / inner) % channels }
}

/// Reads element i of an integer tensor of type `dtype` (int8, uint8, int32) as Int32.
@inline(__always)
func quantValue(_ p: UnsafeRawPointer, _ dtype: DType, _ i: Int) -> Int32 {
  switch dtype {
  case .uint8: return Int32(p.load(fromByteOffset: i, as: UInt8.self))
  case .int8: return Int32(p.load(fromByteOffset: i, as: Int8.self))
  default: return p.load(fromByteOffset: 4 * i, as: Int32.self)
  }
}

/// Writes `v` rounded half to even, plus `zero`, saturated to the range of `dtype` (int8 or uint8),
/// as element i: ONNX's saturate(round(x / scale) + zero_point).
@inline(__always)
func storeQuantized(_ v: Float, zero: Int32, _ p: UnsafeMutableRawPointer, _ dtype: DType, _ i: Int) {
  let (lo, hi): (Float, Float) = dtype == .uint8 ? (0, 255) : (-128, 127)
  var q = v.rounded(.toNearestOrEven) + Float(zero)
  q = q.isNaN ? Float(zero) : min(max(q, lo), hi)
  if dtype == .uint8 {
    p.storeBytes(of: UInt8(q), toByteOffset: i, as: UInt8.self)
  } else {
    p.storeBytes(of: Int8(q), toByteOffset: i, as: Int8.self)
  }
}

/// The type of a quantized tensor's zero point, which must match `dtype` and have `shape`.
func checkZeroPoint(_ c: BuildContext, _ i: Int, dtype: DType, shape: [Int]) throws(ModelError) {
  guard c.hasInput(i) else { return }
  let zp = try c.input(i)
  guard zp.dtype == dtype else { throw c.error("zero point (input \(i)) is \(zp.dtype), the data is \(dtype)") }
  guard zp.shape.reduce(1, *) == shape.reduce(1, *) else {
    throw c.error("zero point (input \(i)) has shape \(zp.shape), its scale \(shape)")
  }
}

/// QuantizeLinear (opsets 10, 13, 19, 21): y = saturate(round(x / y_scale) + y_zero_point), to
/// uint8 (no zero point) or the zero point's type (int8/uint8), per tensor or per axis.
enum QuantizeLinearOp: OpBuilder {
  static let opTypes = ["QuantizeLinear"]

  static func build(_ c: inout BuildContext) throws(ModelError) -> any Step {
    let x = try c.input(0), s = try c.input(1)
    guard x.dtype == .float32, s.dtype == .float32 else {
      throw c.error("QuantizeLinear takes float32 x and y_scale, got \(x.dtype) and \(s.dtype)")
    }
    var out: DType = .uint8
    if c.hasInput(2) { out = try c.input(2).dtype }
    let code = try c.int("output_dtype", 0)
    if code != 0 {
      guard let d = Int32(exactly: code).flatMap(ONNXDataType.dtype) else {
        throw c.error(
          "output_dtype \(Int32(exactly: code).map(ONNXDataType.name) ?? String(code)) is not supported (int8, uint8)")
      }
      guard !c.hasInput(2) || d == out else { throw c.error("output_dtype \(d) differs from the zero point's \(out)") }
      out = d
    }
    guard out == .uint8 || out == .int8 else {
      throw c.error("quantizing to \(out) is not supported (int8, uint8)")
    }
    guard try c.int("block_size", 0) == 0 else { throw c.error("blocked quantization (block_size) is not supported") }
    try checkZeroPoint(c, 2, dtype: out, shape: s.shape)
    let axis = try QuantAxis(c, x: x, scale: s, scaleInput: 1)
    try checkScales(c, [1])
    try c.setOutputs([TensorType(out, x.shape)])
    return QuantizeStep(count: x.count, axis: axis, out: out, hasZero: c.hasInput(2))
  }
}

struct QuantizeStep: Step {
  let count: Int
  let axis: QuantAxis
  let out: DType
  let hasZero: Bool

  func run(_ c: StepContext) throws(RuntimeError) {
    let x = c.input(0, Float.self), s = c.input(1, Float.self)
    let zp: UnsafeRawPointer? = hasZero ? UnsafeRawPointer(c.input(2, UInt8.self)) : nil
    let y = UnsafeMutableRawPointer(c.output(0, UInt8.self))
    // Runs of at least 16 values under one scale go through the SIMD kernel (Kernels/qelem),
    // which computes the same float32 operations as the loop below.
    if axis.inner >= 16 || axis.channels == 1 {
      let run = axis.channels == 1 ? count : axis.inner
      for i0 in stride(from: 0, to: count, by: run) {
        let ch = axis.channel(i0)
        var p = QElem.Params()
        p.yScale = s[ch]
        p.yZero = zp.map { quantValue($0, out, ch) } ?? 0
        p.ySigned = out == .int8
        QElem.run(.quantize, n: min(run, count - i0), a: x + i0, p, y: y + i0)
      }
      return
    }
    for i in 0..<count {
      let ch = axis.channel(i)
      storeQuantized(x[i] / s[ch], zero: zp.map { quantValue($0, out, ch) } ?? 0, y, out, i)
    }
  }
}

/// DequantizeLinear (opsets 10, 13, 19, 21): y = (x - x_zero_point) * x_scale for int8, uint8
/// and int32 x, per tensor or per axis.
enum DequantizeLinearOp: OpBuilder {
  static let opTypes = ["DequantizeLinear"]

  static func build(_ c: inout BuildContext) throws(ModelError) -> any Step {
    let x = try c.input(0), s = try c.input(1)
    guard [.int8, .uint8, .int32].contains(x.dtype) else {
      throw c.error("DequantizeLinear takes int8, uint8 or int32 x, got \(x.dtype)")
    }
    guard s.dtype == .float32 else { throw c.error("x_scale must be float32, got \(s.dtype)") }
    guard try c.int("block_size", 0) == 0 else { throw c.error("blocked quantization (block_size) is not supported") }
    try checkZeroPoint(c, 2, dtype: x.dtype, shape: s.shape)
    if x.dtype == .int32, let z = c.constant(2), z.int64s.contains(where: { $0 != 0 }) {
      throw c.error("the zero point of int32 data must be 0 (ONNX), got \(z.int64s.first { $0 != 0 } ?? 0)")
    }
    let axis = try QuantAxis(c, x: x, scale: s, scaleInput: 1)
    try checkScales(c, [1])
    try c.setOutputs([TensorType(.float32, x.shape)])
    return DequantizeStep(count: x.count, axis: axis, dtype: x.dtype, hasZero: c.hasInput(2))
  }
}

struct DequantizeStep: Step {
  let count: Int
  let axis: QuantAxis
  let dtype: DType
  let hasZero: Bool

  func run(_ c: StepContext) throws(RuntimeError) {
    let x = UnsafeRawPointer(c.input(0, UInt8.self)), s = c.input(1, Float.self)
    let zp: UnsafeRawPointer? = hasZero ? UnsafeRawPointer(c.input(2, UInt8.self)) : nil
    let y = c.output(0, Float.self)
    // int8/uint8 runs of at least 16 values under one scale: the SIMD kernel (Kernels/qelem),
    // the same float32 operations as the loop below.
    if dtype != .int32 && (axis.inner >= 16 || axis.channels == 1) {
      let run = axis.channels == 1 ? count : axis.inner
      for i0 in stride(from: 0, to: count, by: run) {
        let ch = axis.channel(i0)
        var p = QElem.Params()
        p.aScale = s[ch]
        p.aZero = zp.map { quantValue($0, dtype, ch) } ?? 0
        p.aSigned = dtype == .int8
        QElem.run(.dequantize, n: min(run, count - i0), a: x + i0, p, y: y + i0)
      }
      return
    }
    for i in 0..<count {
      let ch = axis.channel(i)
      let z = zp.map { quantValue($0, dtype, ch) } ?? 0
      y[i] = Float(quantValue(x, dtype, i) &- z) * s[ch]
    }
  }
}

/// DynamicQuantizeLinear (opset 11): uint8 quantization of x with the scale and zero point that
/// map [min(x, 0), max(x, 0)] onto [0, 255]; outputs y, y_scale, y_zero_point.
enum DynamicQuantizeLinearOp: OpBuilder {
  static let opTypes = ["DynamicQuantizeLinear"]

  static func build(_ c: inout BuildContext) throws(ModelError) -> any Step {
    let x = try c.input(0)
    guard x.dtype == .float32 else { throw c.error("DynamicQuantizeLinear takes float32, got \(x.dtype)") }
    try c.setOutputs([TensorType(.uint8, x.shape), TensorType(.float32, []), TensorType(.uint8, [])])
    return DynamicQuantizeStep(count: x.count)
  }
}

struct DynamicQuantizeStep: Step {
  let count: Int

  func run(_ c: StepContext) throws(RuntimeError) {
    let x = c.input(0, Float.self)
    var lo: Float = 0, hi: Float = 0
    for i in 0..<count where !x[i].isNaN {
      lo = min(lo, x[i])
      hi = max(hi, x[i])
    }
    // An all-zero x gives scale 0 in the spec's formula; ORT divides by it all the same, which
    // Sparrow does not: zeros quantize to the zero point 0 with scale 0.
    let scale = (hi - lo) / 255
    let zero: Int32 = scale > 0 ? Int32(min(max((0 - lo / scale).rounded(.toNearestOrEven), 0), 255)) : 0
    let y = UnsafeMutableRawPointer(c.output(0, UInt8.self))
    for i in 0..<count { storeQuantized(scale > 0 ? x[i] / scale : 0, zero: zero, y, .uint8, i) }
    c.output(1, Float.self)[0] = scale
    c.output(2, UInt8.self)[0] = UInt8(zero)
  }
}
