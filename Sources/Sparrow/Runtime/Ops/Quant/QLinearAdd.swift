/// QLinearAdd (what Passes/FuseQLinearAdd.swift writes for DequantizeLinear → Add → optional
/// Relu/Clip → QuantizeLinear; inputs as ONNX Runtime's com.microsoft op: a, a_scale, a_zero, b,
/// b_scale, b_zero, y_scale, y_zero, all per tensor and constant): y = quantize(clamp(
/// dequantize(a) + dequantize(b))) with the unfused graph's float32 operations, so the integers
/// are the unfused graph's. Equal shapes run the SIMD kernel (Kernels/qelem); broadcasting runs
/// the same arithmetic in a plain loop.
enum QLinearAddOp: OpBuilder {
  static let opTypes = ["QLinearAdd"]

  static func build(_ c: inout BuildContext) throws(ModelError) -> any Step {
    guard c.node.inputs.count == 8 else { throw c.error("QLinearAdd takes 8 inputs, got \(c.node.inputs.count)") }
    let a = try c.input(0), b = try c.input(3)
    var p = QElem.Params()
    for (data, t) in [(0, a), (3, b)] {
      guard t.dtype == .uint8 || t.dtype == .int8 else {
        throw c.error("QLinearAdd takes int8 or uint8 data, input \(data) is \(t.dtype)")
      }
    }
    try checkScales(c, [1, 4, 6])
    func scalar(_ i: Int, _ what: String) throws(ModelError) -> Tensor {
      let t = try c.requireConstant(i, what)
      guard t.count == 1 else { throw c.error("\(what) (input \(i)) must hold one value, got shape \(t.shape)") }
      return t
    }
    let sa = try scalar(1, "a_scale"), za = try scalar(2, "a_zero_point")
    let sb = try scalar(4, "b_scale"), zb = try scalar(5, "b_zero_point")
    let sy = try scalar(6, "y_scale"), zy = try scalar(7, "y_zero_point")
    guard za.dtype == a.dtype, zb.dtype == b.dtype else {
      throw c.error("zero points are \(za.dtype) and \(zb.dtype), the data \(a.dtype) and \(b.dtype)")
    }
    guard zy.dtype == .uint8 || zy.dtype == .int8 else {
      throw c.error("y_zero_point must be int8 or uint8, got \(zy.dtype)")
    }
    for s in [sa, sb, sy] where s.dtype != .float32 { throw c.error("scales must be float32, got \(s.dtype)") }
    (p.aScale, p.bScale, p.yScale) = (sa.floats[0], sb.floats[0], sy.floats[0])
    (p.aZero, p.bZero, p.yZero) = (Int32(za.int64s[0]), Int32(zb.int64s[0]), Int32(zy.int64s[0]))
    (p.aSigned, p.bSigned, p.ySigned) = (a.dtype == .int8, b.dtype == .int8, zy.dtype == .int8)
    (p.lo, p.hi) = c.node.epilogue.bounds
    guard let out = broadcastShapes(a.shape, b.shape) else {
      throw c.error("shapes \(a.shape) and \(b.shape) do not broadcast")
    }
    try c.setOutputs([TensorType(zy.dtype, out)])
    let walk = a.shape == b.shape ? nil : BinaryWalk(a: a.shape, b: b.shape, out: out)
    return QLinearAddStep(count: out.reduce(1, *), params: p, walk: walk)
  }
}

struct QLinearAddStep: Step {
  let count: Int
  let params: QElem.Params
  /// nil: equal shapes, one kernel call.
  let walk: BinaryWalk?

  func run(_ c: StepContext) throws(RuntimeError) {
    let a = c.input(0, UInt8.self), b = c.input(3, UInt8.self), y = c.output(0, UInt8.self)
    guard let walk else {
      QElem.run(.add, n: count, a: a, b: b, params, y: y)
      return
    }
    let p = params
    func value(_ x: UInt8, _ signed: Bool, _ zero: Int32, _ scale: Float) -> Float {
      Float((signed ? Int32(Int8(bitPattern: x)) : Int32(x)) &- zero) * scale
    }
    let (qlo, qhi): (Float, Float) = p.ySigned ? (-128, 127) : (0, 255)
    walk.apply(a, b, y) { x, z in
      var s = value(x, p.aSigned, p.aZero, p.aScale) + value(z, p.bSigned, p.bZero, p.bScale)
      s = s < p.lo ? p.lo : s
      s = s > p.hi ? p.hi : s
      var q = (s / p.yScale).rounded(.toNearestOrEven) + Float(p.yZero)
      q = q.isNaN ? Float(p.yZero) : min(max(q, qlo), qhi)
      return p.ySigned ? UInt8(bitPattern: Int8(q)) : UInt8(q)
    }
  }
}
