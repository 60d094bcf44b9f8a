/// Cast between the element types Sparrow holds. Floating to integer truncates toward zero and
/// saturates (NaN gives 0) rather than trapping; integer to narrower integer wraps, as numpy does;
/// anything to bool is "not zero".
enum CastOp: OpBuilder {
  static let opTypes = ["Cast"]

  static func build(_ c: inout BuildContext) throws(ModelError) -> any Step {
    let x = try c.input(0)
    let code = try c.int("to", 0)
    guard let to = Int32(exactly: code).flatMap(ONNXDataType.dtype) else {
      throw c.error("attribute 'to' names data type \(Int32(exactly: code).map(ONNXDataType.name) ?? String(code)), which Sparrow does not support")
    }
    try c.setOutputs([TensorType(to, x.shape)])
    return CastStep(from: x.dtype, to: to, count: x.count)
  }
}

struct CastStep: Step {
  let from: DType, to: DType
  let count: Int

  func run(_ c: StepContext) throws(RuntimeError) {
    let out = UnsafeMutableRawPointer(c.output(0, UInt8.self))
    if from == to {
      out.copyMemory(from: c.input(0, UInt8.self), byteCount: count * from.size)
      return
    }
    switch from {
    case .float32: floating(c.input(0, Float.self), out) { Double($0) }
    case .float64: floating(c.input(0, Double.self), out) { $0 }
    case .int64: integer(c.input(0, Int64.self), out) { $0 }
    case .int32: integer(c.input(0, Int32.self), out) { Int64($0) }
    case .int8: integer(c.input(0, Int8.self), out) { Int64($0) }
    case .uint8: integer(c.input(0, UInt8.self), out) { Int64($0) }
    case .bool: integer(c.input(0, UInt8.self), out) { $0 != 0 ? 1 : 0 }
    }
  }

  @inline(__always)
  private func floating<S>(_ x: UnsafePointer<S>, _ out: UnsafeMutableRawPointer, _ get: (S) -> Double) {
    let n = count
    switch to {
    case .float32: let y = out.assumingMemoryBound(to: Float.self); for i in 0..<n { y[i] = Float(get(x[i])) }
    case .float64: let y = out.assumingMemoryBound(to: Double.self); for i in 0..<n { y[i] = get(x[i]) }
    case .int64: let y = out.assumingMemoryBound(to: Int64.self); for i in 0..<n { y[i] = saturating(get(x[i])) }
    case .int32: let y = out.assumingMemoryBound(to: Int32.self); for i in 0..<n { y[i] = saturating(get(x[i])) }
    case .int8: let y = out.assumingMemoryBound(to: Int8.self); for i in 0..<n { y[i] = saturating(get(x[i])) }
    case .uint8: let y = out.assumingMemoryBound(to: UInt8.self); for i in 0..<n { y[i] = saturating(get(x[i])) }
    case .bool: let y = out.assumingMemoryBound(to: UInt8.self); for i in 0..<n { y[i] = get(x[i]) != 0 ? 1 : 0 }
    }
  }

  @inline(__always)
  private func integer<S>(_ x: UnsafePointer<S>, _ out: UnsafeMutableRawPointer, _ get: (S) -> Int64) {
    let n = count
    switch to {
    case .float32: let y = out.assumingMemoryBound(to: Float.self); for i in 0..<n { y[i] = Float(get(x[i])) }
    case .float64: let y = out.assumingMemoryBound(to: Double.self); for i in 0..<n { y[i] = Double(get(x[i])) }
    case .int64: let y = out.assumingMemoryBound(to: Int64.self); for i in 0..<n { y[i] = get(x[i]) }
    case .int32: let y = out.assumingMemoryBound(to: Int32.self); for i in 0..<n { y[i] = Int32(truncatingIfNeeded: get(x[i])) }
    case .int8: let y = out.assumingMemoryBound(to: Int8.self); for i in 0..<n { y[i] = Int8(truncatingIfNeeded: get(x[i])) }
    case .uint8: let y = out.assumingMemoryBound(to: UInt8.self); for i in 0..<n { y[i] = UInt8(truncatingIfNeeded: get(x[i])) }
    case .bool: let y = out.assumingMemoryBound(to: UInt8.self); for i in 0..<n { y[i] = get(x[i]) != 0 ? 1 : 0 }
    }
  }
}

/// Truncates toward zero, saturating at the type's range; NaN gives 0.
@inline(__always)
func saturating<T: FixedWidthInteger>(_ d: Double) -> T {
  if d.isNaN { return 0 }
  if d <= Double(T.min) { return T.min }
  if d >= Double(T.max) { return T.max }
  return T(d)
}
