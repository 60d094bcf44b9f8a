/// Equal, Greater, GreaterOrEqual, Less, LessOrEqual with numpy broadcasting: float32, int64 or
/// int32 operands of one type (Equal also bool), a bool result (what a learned gate's threshold produces).
/// Comparisons with NaN are false, as in IEEE 754 and ONNX Runtime.
enum CompareOp: OpBuilder {
  static let opTypes = ["Equal", "Greater", "GreaterOrEqual", "Less", "LessOrEqual"]

  static func build(_ c: inout BuildContext) throws(ModelError) -> any Step {
    let a = try c.input(0), b = try c.input(1)
    let op = c.node.opType
    guard a.dtype == b.dtype else { throw c.error("\(op) needs equal input types, got \(a.dtype) and \(b.dtype)") }
    guard [.float32, .int64, .int32].contains(a.dtype) || (a.dtype == .bool && op == "Equal") else {
      throw c.error("\(op) takes float32, int64 or int32 (Equal also bool), got \(a.dtype)")
    }
    guard let out = broadcastShapes(a.shape, b.shape) else {
      throw c.error("shapes \(a.shape) and \(b.shape) do not broadcast")
    }
    try c.setOutputs([TensorType(.bool, out)])
    let kind: CompareStep.Kind
    switch op {
    case "Equal": kind = .equal
    case "Greater": kind = .greater
    case "GreaterOrEqual": kind = .greaterOrEqual
    case "Less": kind = .less
    default: kind = .lessOrEqual
    }
    return CompareStep(kind: kind, dtype: a.dtype, walk: BinaryWalk(a: a.shape, b: b.shape, out: out))
  }
}

struct CompareStep: Step {
  enum Kind: Sendable { case equal, greater, greaterOrEqual, less, lessOrEqual }
  let kind: Kind
  let dtype: DType
  let walk: BinaryWalk

  func run(_ c: StepContext) throws(RuntimeError) {
    switch dtype {
    case .float32: compare(c, Float.self)
    case .int64: compare(c, Int64.self)
    case .int32: compare(c, Int32.self)
    case .bool: compare(c, UInt8.self)
    default: throw RuntimeError("comparing \(dtype) is not supported")
    }
  }

  @inline(__always)
  private func compare<T: Comparable>(_ c: StepContext, _: T.Type) {
    let a = c.input(0, T.self), b = c.input(1, T.self), y = c.output(0, UInt8.self)
    switch kind {
    case .equal: walk.apply(a, b, y) { $0 == $1 ? 1 : 0 }
    case .greater: walk.apply(a, b, y) { $0 > $1 ? 1 : 0 }
    case .greaterOrEqual: walk.apply(a, b, y) { $0 >= $1 ? 1 : 0 }
    case .less: walk.apply(a, b, y) { $0 < $1 ? 1 : 0 }
    case .lessOrEqual: walk.apply(a, b, y) { $0 <= $1 ? 1 : 0 }
    }
  }
}
